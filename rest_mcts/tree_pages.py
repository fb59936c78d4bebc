"""Search trees as self-contained HTML (no network at view time, every style and script inline): a page per tree and
an index. Per node: the step text, visits, the PRM's score and the backed-up value, the inferred process rewards
(hard estimate and quality value, the PRM's training targets), the true step label on synthetic tasks, tokens, and
whether the step was pruned, is terminal, or ends right or wrong; paths to a right answer highlighted, the answer
MCTS* chose marked beside the oracle's, every subtree foldable (`<details>`; a folded one says how many nodes it
hides). `python -m rest_mcts.show_trees` writes them for a round; `iterate` logs a sample of each round's to W&B.
tests/test_tree_page_browser.py checks them in headless Chromium."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from lm.data import Problem, read_appended_jsonl
from rest_mcts.round_metrics import node_step_labels
from rest_mcts.tasks import Task
from search.mcts import best_answer_node
from search.tree import Tree
from search.value_inference import NodeReward, infer_process_rewards, unsolved_rewards

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } .meta { color: #555; margin-bottom: 1em; }
details { margin-left: 1.4em; border-left: 1px solid #ccc; padding-left: 0.5em; }
summary { cursor: pointer; padding: 1px 0; }
details.leaf > summary { list-style-type: "•  "; cursor: default; }
details[open] > summary > .folded { display: none; }
.step { font-family: ui-monospace, monospace; white-space: pre-wrap; background: #f4f4f4; padding: 0 3px; }
.right-path > summary .step { background: #d8f5d8; }
.chosen > summary { outline: 2px solid #3060d0; }
.figure { color: #555; font-size: 0.9em; margin-left: 0.6em; }
.badge { font-size: 0.8em; padding: 0 4px; border-radius: 3px; margin-left: 4px; }
.ok { background: #2e8b57; color: white; } .bad { background: #c0392b; color: white; }
.pruned { background: #999; color: white; } .folded { color: #3060d0; font-size: 0.85em; margin-left: 6px; }
.label-right, .label-wrong { margin-left: 6px; } .label-right { color: #2e8b57; } .label-wrong { color: #c0392b; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { cursor: pointer; background: #eee; }
"""


SORT_SCRIPT = """
document.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const rows = Array.from(body.rows);
  const key = row => { const text = row.cells[column].dataset.sort ?? row.cells[column].textContent;
                       const number = parseFloat(text); return isNaN(number) ? text : number; };
  const descending = th.dataset.order !== "descending";
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (descending ? -1 : 1));
  th.dataset.order = descending ? "descending" : "ascending";
  rows.forEach(row => body.appendChild(row));
}));
"""


@dataclass(frozen=True)
class TreeView:
    """One tree with what its page shows beside the nodes."""

    tree: Tree
    problem: Problem
    rewards: dict[int, NodeReward]
    labels: dict[int, bool]
    """True label of each non-root node (every step of its prefix right); empty on a task without labels."""
    chosen: int | None
    """The terminal MCTS*'s answer comes from (`search.mcts.best_answer_node` at the run's answer margin)."""
    chosen_answer: str | None
    chosen_correct: bool


def view_of(tree: Tree, problem: Problem, task: Task, margin: float) -> TreeView:
    def is_correct(steps):
        return task.is_correct(problem, steps)

    solved = any(tree.nodes[n].answer_correct for n in tree.terminal_nodes())
    rewards = infer_process_rewards(tree, is_correct) if solved else unsolved_rewards(tree)
    labels = node_step_labels(task, problem, tree) if task.synthetic else {}
    chosen = best_answer_node(tree, margin, task.extract_answer)
    answer = task.extract_answer(tree.steps_of(chosen)) if chosen is not None else None
    return TreeView(tree, problem, rewards, labels, chosen, answer, task.check_answer(answer, problem.answer))


def _node_html(view: TreeView, node_id: int, chosen_path: set[int]) -> str:
    node = view.tree.nodes[node_id]
    reward = view.rewards.get(node_id)
    classes = [name for name, on in (("right-path", reward is not None and reward.hard_estimate > 0),
                                     ("chosen", node_id == view.chosen), ("leaf", not node.children)) if on]
    step = html.escape(node.step_text) if node_id else "(question)"
    figures = [f"visits {node.visit_count}", f"PRM {node.prm_score:.3f}", f"value {node.value:.3f}"]
    if reward is not None and node_id:
        figures.append(f"inferred r {reward.hard_estimate:+d}, v {reward.quality_value:.3f}")
    figures.append(f"{node.num_tokens} tok")
    badges = []
    if node_id in view.labels:
        right = view.labels[node_id]
        badges.append(f'<span class="{"label-right" if right else "label-wrong"}" title="true step label">'
                      f'{"✓ step right" if right else "✗ step wrong"}</span>')
    if node.pruned and node.children:  # search.expansion closes a node whose every child failed its check
        badges.append('<span class="badge pruned">dead end (every child failed its check)</span>')
    elif node.pruned:
        badges.append('<span class="badge pruned">pruned (check failed)</span>')
    if node.is_terminal and not node.children:
        verdict = node.answer_correct
        text = "terminal" if verdict is None else "right answer" if verdict else "wrong answer"
        badges.append(f'<span class="badge {"" if verdict is None else "ok" if verdict else "bad"}">{text}</span>')
    if node_id == view.chosen:
        badges.append('<span class="badge ok">MCTS* answer</span>' if view.chosen_correct
                      else '<span class="badge bad">MCTS* answer</span>')
    if node.children:  # shown while the subtree is folded
        below = _subtree_size(view.tree, node_id) - 1
        badges.append(f'<span class="folded">▸ {below} node{"s" if below > 1 else ""} folded</span>')
    children = "".join(_node_html(view, child, chosen_path) for child in node.children)
    on_right_path = reward is not None and reward.hard_estimate > 0
    opened = " open" if node_id in chosen_path or on_right_path or not node_id else ""
    return (f'<details class="{" ".join(classes)}"{opened} data-node="{node_id}"><summary><span class="step">{step}'
            f'</span><span class="figure">{" · ".join(figures)}</span>{"".join(badges)}</summary>{children}</details>')


def _subtree_size(tree: Tree, node_id: int) -> int:
    return 1 + sum(_subtree_size(tree, child) for child in tree.nodes[node_id].children)


def tree_page(view: TreeView, title: str) -> str:
    tree, problem = view.tree, view.problem
    chosen_path = set(tree.path_to(view.chosen)) if view.chosen is not None else set()
    # A task whose answers are checked rather than matched (modtarget: any operations that reach the target) keeps
    # the question as its oracle answer.
    oracle = "the task's check" if problem.answer.strip() == problem.question.strip() else problem.answer
    meta = (f"oracle answer <b>{html.escape(oracle)}</b> · MCTS* answer "
            f"<b>{html.escape(str(view.chosen_answer))}</b> ({'right' if view.chosen_correct else 'wrong'}) · "
            f"{len(tree.nodes)} nodes · {tree.tokens_used} tokens · {tree.simulation_count} simulations · "
            f"stopped: {html.escape(tree.stop_reason or '-')}")
    legend = ("green steps lie on a path to a right answer; the blue outline is the answer MCTS* chose; "
              "r and v are the process rewards inferred from the tree and the oracle (the PRM's targets)")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>'
            f'<div class="meta"><div class="step">{html.escape(tree.prompt)}</div>{meta}<br>{legend}</div>'
            f'{_node_html(view, 0, chosen_path)}</body></html>\n')


def file_name(problem_id: str) -> str:
    return "tree_" + re.sub(r"[^A-Za-z0-9_.-]", "_", problem_id) + ".html"


def index_page(views: list[TreeView], title: str) -> str:
    rows = []
    for view in views:
        tree = view.tree
        solved = any(tree.nodes[n].answer_correct for n in tree.terminal_nodes())
        rows.append(f'<tr><td><a href="{file_name(tree.problem_id)}">{html.escape(tree.problem_id)}</a></td>'
                    f'<td data-sort="{int(solved)}">{"yes" if solved else "no"}</td>'
                    f'<td data-sort="{int(view.chosen_correct)}">{"right" if view.chosen_correct else "wrong"}</td>'
                    f'<td>{len(tree.nodes)}</td><td>{tree.tokens_used}</td>'
                    f'<td>{max(node.depth for node in tree.nodes)}</td></tr>')
    solved_count = sum(any(v.tree.nodes[n].answer_correct for n in v.tree.terminal_nodes()) for v in views)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><div class="meta">{len(views)} trees, '
            f'{solved_count} holding a right answer; click a column to sort.</div><table><thead><tr><th>problem</th>'
            f'<th>solved (a right answer in the tree)</th><th>MCTS* answer</th><th>nodes</th><th>tokens</th>'
            f'<th>depth</th></tr></thead><tbody>{"".join(rows)}</tbody></table><script>{SORT_SCRIPT}</script>'
            f'</body></html>\n')


def sample_pages(task: Task, problems: list[Problem], trees_path: Path, margin: float, count: int,
                 title: str) -> dict[str, str]:
    """The pages of the first `count` trees of `trees_path` in problem order (of `problems`), by problem id: what
    `iterate` logs to W&B each round. Empty when the file does not exist."""
    if count < 1 or not trees_path.exists():
        return {}
    by_id = {problem.id: problem for problem in problems}
    records = sorted((record for record in read_appended_jsonl(trees_path) if record["problem_id"] in by_id),
                     key=lambda record: record["problem_id"])[:count]
    trees = [Tree.from_dict(record) for record in records]
    return {tree.problem_id: tree_page(view_of(tree, by_id[tree.problem_id], task, margin),
                                       f"{title}: problem {tree.problem_id}") for tree in trees}

