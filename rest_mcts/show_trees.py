"""Search trees in the browser: self-contained HTML pages (no network at view time, every style and script inline) of
one round's trees, one page per tree and an index.

Per node: the step text, visits, the PRM's score and the backed-up value, the inferred process rewards (hard
estimate and quality value, from the tree and the oracle, as the PRM's training targets), the true step label on
synthetic tasks, tokens, and whether the step was pruned, is terminal, or ends right or wrong. Paths to a right answer
are highlighted, the answer MCTS* chose is marked beside the oracle's, and every subtree folds (`<details>`). The
index lists the trees, sortable by solved, answer, size and tokens.

Command line: python -m rest_mcts.show_trees RUN --round K [--split train|dev|test|ood] [--problem ID] [--out DIR]
   (train: the round's search, trees.jsonl; dev/test/ood: the round evaluation's MCTS*, eval_<split>_trees.jsonl)
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from lm.data import Problem, atomic_write_text, read_appended_jsonl
from rest_mcts.flags import read_saved_config
from rest_mcts.problems import RunProblems
from rest_mcts.tasks import Task, load_task
from search.mcts import best_answer_node
from search.tree import Tree
from search.value_inference import NodeReward, infer_process_rewards, unsolved_rewards

SPLITS = ("train", "dev", "test", "ood")

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } .meta { color: #555; margin-bottom: 1em; }
details { margin-left: 1.4em; border-left: 1px solid #ccc; padding-left: 0.5em; }
summary { cursor: pointer; padding: 1px 0; }
.step { font-family: ui-monospace, monospace; white-space: pre-wrap; background: #f4f4f4; padding: 0 3px; }
.right-path > summary .step { background: #d8f5d8; }
.chosen > summary { outline: 2px solid #3060d0; }
.figure { color: #555; font-size: 0.9em; margin-left: 0.6em; }
.badge { font-size: 0.8em; padding: 0 4px; border-radius: 3px; margin-left: 4px; }
.ok { background: #2e8b57; color: white; } .bad { background: #c0392b; color: white; }
.pruned { background: #999; color: white; } .label-right { color: #2e8b57; } .label-wrong { color: #c0392b; }
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


def trees_file(run: Path, round_index: int, split: str) -> Path:
    folder = run / f"round_{round_index:02d}"
    return folder / ("trees.jsonl" if split == "train" else f"eval_{split}_trees.jsonl")


def split_problems(config, task: Task, split: str) -> list[Problem]:
    problems = RunProblems.of(config, task)
    return {"train": problems.train, "dev": problems.dev}.get(split) or problems.held_out.get(split, [])


def answer_margin(run: Path, round_index: int, default: float) -> float:
    """The margin the round's evaluation picked on dev (`dev/mcts/answer_margin`), else the configured one."""
    eval_file = run / f"round_{round_index:02d}" / "eval.json"
    if eval_file.exists():
        return float(json.loads(eval_file.read_text()).get("dev/mcts/answer_margin", default))
    return default


def view_of(tree: Tree, problem: Problem, task: Task, margin: float) -> TreeView:
    def is_correct(steps):
        return task.is_correct(problem, steps)

    solved = any(tree.nodes[n].answer_correct for n in tree.terminal_nodes())
    rewards = infer_process_rewards(tree, is_correct) if solved else unsolved_rewards(tree)
    labels = {}
    if task.synthetic:
        labels = {node.node_id: task.step_labels(problem, tree.steps_of(node.node_id))[-1] for node in tree.nodes[1:]}
    chosen = best_answer_node(tree, margin, task.extract_answer)
    answer = task.extract_answer(tree.steps_of(chosen)) if chosen is not None else None
    return TreeView(tree, problem, rewards, labels, chosen, answer, task.check_answer(answer, problem.answer))


def _node_html(view: TreeView, node_id: int, chosen_path: set[int]) -> str:
    node = view.tree.nodes[node_id]
    reward = view.rewards.get(node_id)
    classes = [name for name, on in (("right-path", reward is not None and reward.hard_estimate > 0),
                                     ("chosen", node_id == view.chosen)) if on]
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
    if node.pruned:
        badges.append('<span class="badge pruned">pruned (check failed)</span>')
    if node.is_terminal:
        verdict = node.answer_correct
        text = "terminal" if verdict is None else "right answer" if verdict else "wrong answer"
        badges.append(f'<span class="badge {"" if verdict is None else "ok" if verdict else "bad"}">{text}</span>')
    if node_id == view.chosen:
        badges.append('<span class="badge ok">MCTS* answer</span>' if view.chosen_correct
                      else '<span class="badge bad">MCTS* answer</span>')
    children = "".join(_node_html(view, child, chosen_path) for child in node.children)
    on_right_path = reward is not None and reward.hard_estimate > 0
    opened = " open" if node_id in chosen_path or on_right_path or not node_id else ""
    return (f'<details class="{" ".join(classes)}"{opened} data-node="{node_id}"><summary><span class="step">{step}'
            f'</span><span class="figure">{" · ".join(figures)}</span>{"".join(badges)}</summary>{children}</details>')


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


def load_views(run: Path, round_index: int, split: str, problem_id: str | None = None) -> list[TreeView]:
    """The trees of one round and split with what their pages show; ValueError naming what is missing."""
    config_file = run / "config.yaml"
    if not config_file.exists():
        raise ValueError(f"{run}: not a run folder (no config.yaml)")
    path = trees_file(run, round_index, split)
    if not path.exists():
        raise ValueError(f"{path}: no such file (round {round_index} has no {split} trees)")
    config = read_saved_config(config_file)
    task = load_task(config.task, config.model.policy_model or None)
    problems = {problem.id: problem for problem in split_problems(config, task, split)}
    margin = answer_margin(run, round_index, config.eval.answer_margin)
    views = []
    for record in read_appended_jsonl(path):
        tree = Tree.from_dict(record)
        if problem_id is not None and tree.problem_id != problem_id:
            continue
        if tree.problem_id not in problems:
            raise ValueError(f"{path}: problem {tree.problem_id} is not in the {split} split of {config_file}")
        views.append(view_of(tree, problems[tree.problem_id], task, margin))
    if problem_id is not None and not views:
        raise ValueError(f"{path}: no tree of problem {problem_id!r}")
    return sorted(views, key=lambda view: view.tree.problem_id)


def write_pages(views: list[TreeView], out: Path, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for view in views:
        atomic_write_text(out / file_name(view.tree.problem_id),
                          tree_page(view, f"{title}: problem {view.tree.problem_id}"))
    atomic_write_text(out / "index.html", index_page(views, title))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.show_trees", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="An iterate run folder (runs/<experiment>).")
    parser.add_argument("--round", type=int, required=True, dest="round_index", help="Which round.")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="train: the round's search; dev, test, ood: the round evaluation's MCTS* (default test).")
    parser.add_argument("--problem", default=None, help="One problem's tree only.")
    parser.add_argument("--out", type=Path, default=None, help="Output folder (default RUN/trees/round_NN_SPLIT).")
    args = parser.parse_args(argv)
    try:
        views = load_views(args.run, args.round_index, args.split, args.problem)
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    out = args.out or args.run / "trees" / f"round_{args.round_index:02d}_{args.split}"
    write_pages(views, out, f"{args.run.name} round {args.round_index}, {args.split} trees")
    print(f"{len(views)} trees: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
