"""MCTS* of ReST-MCTS* (Zhang et al., NeurIPS 2024): PRM-guided search over reasoning steps, batched across trees.

The language models enter only through `propose` and `score` (search/types.py). One call of
`simulate` runs one simulation on every running tree and makes one `propose` call for all the
leaves it expands, one `score` call for all their new children, and one `propose` plus one
`score` call per rollout level. Because each tree's search depends only on its own nodes and on
the answers for its own prefixes, a tree searched in a batch ends exactly as it would alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from search.expansion import Scorers, expand, roll_forward, score_nodes
from search.params import MCTSParams
from search.selection import backup, exhausted_nodes, select_leaf
from search.tree import Tree
from search.types import (
    AnswerFn,
    GreedyFn,
    ProposeFn,
    ScoreFn,
    readable_first,
)


def _budget_stop_reason(tree: Tree, params: MCTSParams) -> str:
    if tree.simulation_count >= params.max_simulations:
        return "max_simulations"
    if params.max_tokens > 0 and tree.tokens_used >= params.max_tokens:
        return "max_tokens"
    return ""


def simulate(trees: Sequence[Tree], propose: ProposeFn, score: Scorers | ScoreFn, params: MCTSParams) -> None:
    """Run one MCTS* simulation on every tree whose `stop_reason` is '' (trees are updated in place).

    Per tree: stop if a budget is spent; else select a leaf by UCT. A terminal leaf with
    V ≥ end_gate stops the search (when stop_at_end_gate) without counting a simulation; any
    other terminal leaf stops it if every leaf is terminal ('exhausted'), and otherwise counts
    as a simulation and is backed up again. Without stop_at_end_gate, selection skips exhausted
    subtrees, so it reaches a terminal leaf only once the whole tree is exhausted. A non-terminal leaf is
    expanded (all trees in one propose and one score call), its best new child rolled forward if asked, and the
    leaf backed up.
    A tree whose budget is spent after this simulation is marked stopped.
    """
    to_expand: list[tuple[Tree, int]] = []
    for tree in trees:
        if tree.stop_reason:
            continue
        tree.stop_reason = _budget_stop_reason(tree, params)
        if tree.stop_reason:
            continue
        leaf_id = select_leaf(tree, params)
        leaf = tree.nodes[leaf_id]
        if not leaf.is_terminal:
            to_expand.append((tree, leaf_id))
        elif params.stop_at_end_gate and leaf.value >= params.end_gate:
            tree.stop_reason = "end_gate"
        elif exhausted_nodes(tree)[tree.root.node_id]:
            tree.stop_reason = "exhausted"
        else:
            backup(tree, leaf_id)
            tree.simulation_count += 1
            tree.stop_reason = _budget_stop_reason(tree, params)

    new_children = expand(to_expand, propose, score, params)
    if params.roll_forward_steps > 0:
        rollout_starts = []
        for (tree, _), child_ids in zip(to_expand, new_children):
            if not child_ids:
                continue
            best_child_id = max(child_ids, key=lambda child_id: (tree.nodes[child_id].prm_score, -child_id))
            if not tree.nodes[best_child_id].is_terminal:
                rollout_starts.append((tree, best_child_id))
        roll_forward(rollout_starts, propose, score.score if isinstance(score, Scorers) else score, params)
    for tree, leaf_id in to_expand:
        backup(tree, leaf_id)
        tree.simulation_count += 1
        tree.stop_reason = _budget_stop_reason(tree, params)


def run_mcts(
    prompts: Sequence[tuple[str, str]], propose: ProposeFn, score: Scorers | ScoreFn, params: MCTSParams
) -> list[Tree]:
    """Search one tree per (problem_id, prompt), all batched together, until every tree stops.

    Returns the finished trees in the order of `prompts`; each tree's `stop_reason` says why it
    stopped and `tokens_used` what it cost.
    """
    trees = [Tree.new(problem_id, prompt) for problem_id, prompt in prompts]
    while any(not tree.stop_reason for tree in trees):
        simulate(trees, propose, score, params)
    return trees


def best_leaf(tree: Tree) -> int:
    """The leaf reached from the root by always taking the child of highest V (ties: the earlier child); pruned
    children are passed over (a node whose children are all pruned is the leaf)."""
    node = tree.root
    while True:
        children = [tree.nodes[child_id] for child_id in node.children if not tree.nodes[child_id].pruned]
        if not children:
            return node.node_id
        node = max(children, key=lambda child: (child.value, -child.node_id))


def complete_best_paths(trees: Sequence[Tree], greedy: GreedyFn, score: Scorers | ScoreFn, max_depth: int) -> None:
    """Give every tree without a terminal node one: its best path (`best_leaf`) continued by the policy's argmax
    steps until a final step or max_depth, each new step added as a scored node (its tokens count in
    `tokens_used`). So a search stopped by its budget before any solution finished still answers, as anytime
    search should; trees that hold a terminal node that is not pruned are left alone. The completion is not checked
    (the answer it reaches is read as written). One `greedy` call and one scoring (`score_nodes`) per level."""
    open_leaves = {index: best_leaf(tree) for index, tree in enumerate(trees)
                   if not any(not tree.nodes[i].pruned for i in tree.terminal_nodes())}
    while open_leaves:
        indices = list(open_leaves)
        steps = greedy([trees[index].prefix_of(open_leaves[index]) for index in indices])
        added = []
        for index, step in zip(indices, steps, strict=True):
            tree, leaf = trees[index], open_leaves[index]
            if not step.text.strip():  # the policy ends the solution here: the leaf is as finished as it gets
                tree.dropped_tokens += step.num_tokens
                tree.nodes[leaf].is_terminal = True
                del open_leaves[index]
                continue
            terminal = step.is_final or tree.nodes[leaf].depth + 1 >= max_depth
            child = tree.add_child(leaf, step.text, step.num_tokens, is_terminal=terminal)
            added.append((tree, child))
            if terminal:
                del open_leaves[index]
            else:
                open_leaves[index] = child
        if added:
            for (tree, child), value in zip(added, score_nodes(added, score)):
                tree.nodes[child].prm_score = tree.nodes[child].value = value


def sibling_ranks(tree: Tree, node_id: int) -> tuple[int, ...]:
    """The position of each node on the path to `node_id` among its siblings (0: the parent's first child).

    Children are added in the order the sampler proposed them, so with a sampler whose first proposal is
    the argmax step, the greedy path is the one whose ranks are all 0.
    """
    path = tree.path_to(node_id)
    return tuple(tree.nodes[parent].children.index(child) for parent, child in pairwise(path))


def best_answer_node(tree: Tree, margin: float = 0.0, extract_answer: AnswerFn | None = None) -> int | None:
    """The terminal node with the highest V; None if the tree has no terminal node. Pruned nodes compete only when
    every terminal is pruned. With `extract_answer`,
    only terminals whose answer can be read compete, unless none can: a solution with no answer is never
    picked over one that has an answer, as a vote never counts it.

    Terminals within `margin` of the highest V count as tied. Ties go to the terminal whose path takes
    the earlier-proposed child where the paths part (`sibling_ranks`, compared in order), so a search
    whose first proposal is the greedy step answers like greedy decoding unless its scorer prefers
    another terminal by more than `margin`.
    """
    terminals = tree.terminal_nodes()
    terminals = [node_id for node_id in terminals if not tree.nodes[node_id].pruned] or terminals
    terminal_ids = readable_first(terminals, tree.steps_of, extract_answer)
    if not terminal_ids:
        return None
    best = max(tree.nodes[node_id].value for node_id in terminal_ids)
    tied = [node_id for node_id in terminal_ids if tree.nodes[node_id].value >= best - margin]
    return min(tied, key=lambda node_id: sibling_ranks(tree, node_id))
