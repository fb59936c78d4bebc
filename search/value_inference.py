"""Per-step process rewards inferred from a finished tree and the oracle answer (ReST-MCTS*, Zhang et al. 2024)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from search.tree import ROOT_ID, Tree


@dataclass(frozen=True)
class NodeReward:
    """What value inference concludes about one node."""

    reasoning_distance: int
    """m_k + 1: steps to the nearest correct answer, this node's step included (1 on a correct terminal)."""
    hard_estimate: int
    """r_k: +1 if the node's subtree holds a correct terminal node, else -1."""
    quality_value: float
    """v_k in [0, 1], the PRM's regression target for the prefix ending at this node."""


def grade_terminal_nodes(tree: Tree, is_correct: Callable[[tuple[str, ...]], bool]) -> None:
    """Write the oracle's verdict `is_correct(steps)` into `answer_correct` of every terminal node (in place)."""
    for node_id in tree.terminal_nodes():
        tree.nodes[node_id].answer_correct = bool(is_correct(tree.steps_of(node_id)))


def infer_process_rewards(
    tree: Tree, is_correct: Callable[[tuple[str, ...]], bool]
) -> dict[int, NodeReward]:
    """Reasoning distance, hard estimate and quality value of every node, keyed by node id.

    `is_correct(steps)` grades a terminal node's steps against the oracle answer. The ReST-MCTS*
    rules: a correct terminal node has distance 1; a node with a correct node below it has
    distance 1 + the least distance among its children that have one, and r = +1; every other
    node has r = −1 and the distance of its nearest ancestor that has one. From the root (v = 0)
    down: v_k = max(0, v_{k−1} + (1 − v_{k−1})·r_k / distance_k). The root is included with
    quality value 0. A tree with no correct terminal node gives an empty dict (the official
    rule: no value examples from such a tree). The tree is not modified.
    """
    correct = {node_id for node_id in tree.terminal_nodes() if is_correct(tree.steps_of(node_id))}
    if not correct:
        return {}

    # Children have larger ids than their parents, so descending ids visit children first.
    distance_to_correct: dict[int, int] = {}
    for node in reversed(tree.nodes):
        if node.node_id in correct:
            distance_to_correct[node.node_id] = 1
            continue
        child_distances = [distance_to_correct[c] for c in node.children if c in distance_to_correct]
        if child_distances:
            distance_to_correct[node.node_id] = 1 + min(child_distances)

    rewards = {ROOT_ID: NodeReward(distance_to_correct[ROOT_ID], 1, 0.0)}
    for node in tree.nodes[1:]:  # ascending ids: each parent is done before its children
        parent = rewards[node.parent_id]
        if node.node_id in distance_to_correct:
            distance, hard_estimate = distance_to_correct[node.node_id], 1
        else:
            distance, hard_estimate = parent.reasoning_distance, -1
        previous = parent.quality_value
        quality_value = max(0.0, previous + (1.0 - previous) * hard_estimate / distance)
        rewards[node.node_id] = NodeReward(distance, hard_estimate, quality_value)
    return rewards


def unsolved_rewards(tree: Tree, terminals_only: bool = False) -> dict[int, NodeReward]:
    """Rewards of a tree with no correct terminal node: every node (with `terminals_only`, every terminal node)
    has no correct answer below it (r = −1, quality value 0, reasoning distance 0 for "none found"). The official
    code takes no examples from such a tree; its graded terminals are nonetheless the surest negatives a search
    produces, while its other nodes may be right steps that were not followed far enough."""
    return {node.node_id: NodeReward(0, -1, 0.0) for node in tree.nodes if node.is_terminal or not terminals_only}


TREE_TARGETS = ("quality", "hard")
"""PRM regression targets read from the tree: `quality` (ReST-MCTS* v_k) or `hard` (the hard estimate, 1 when the
node's subtree holds a correct answer, else 0)."""

MC_TARGETS = ("mc_hard", "mc_soft", "omega")
"""PRM targets from Monte Carlo completions by the policy (Math-Shepherd, Wang et al. 2024: per prefix, K
completions, `mc_hard` 1 when any reaches the right answer, `mc_soft` the share that does; OmegaPRM, Luo et al.
2024: `omega`, a binary search for a wrong solution's first wrong step, each probe K completions of a prefix)."""

VALUE_TARGETS = TREE_TARGETS + MC_TARGETS


def mc_target(correct: int, completions: int, target: str) -> float:
    """Math-Shepherd's label of a prefix from `correct` right completions of `completions`."""
    if completions < 1:
        raise ValueError("a Monte Carlo label needs at least one completion")
    return float(correct > 0) if target == "mc_hard" else correct / completions


class FirstErrorSearch:
    """OmegaPRM's binary search for the first wrong step of a wrong solution of `len(steps)` steps. A probed
    prefix from which some completion reaches the right answer counts as right so far, one from which none does
    as wrong. Invariant: the prefix of `lo` steps is right (0: the problem itself), that of `hi` steps wrong (at
    first the whole wrong solution); done when `hi == lo + 1`: step `hi` (1-based) is the first wrong one."""

    def __init__(self, steps: tuple[str, ...]):
        if not steps:
            raise ValueError("a solution with no steps has no wrong step")
        self.steps = steps
        self.lo, self.hi = 0, len(steps)

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def probe(self) -> int:
        """The length of the prefix to probe next."""
        return (self.lo + self.hi) // 2

    def record(self, length: int, correct: int) -> None:
        """The probe of the prefix of `length` steps found `correct` right completions."""
        if correct > 0:
            self.lo = length
        else:
            self.hi = length

    def labels(self) -> list[tuple[tuple[str, ...], float]]:
        """(prefix, target): 1 for each prefix up to the last right one, 0 for the first wrong one; the steps
        after it are not labelled."""
        return [(self.steps[:length], 1.0) for length in range(1, self.lo + 1)] + [(self.steps[:self.hi], 0.0)]


VALUE_NODES = ("finished", "all")
"""Which nodes of a tree get value examples: `finished` (the official ReST-MCTS* code) only nodes with a
terminal node in their subtree, whose label rests on at least one finished solution below them; `all` also
the nodes below which nothing was finished (sampled children never expanded, unfinished leaves), labelled
"no correct answer below" though none was looked for."""


def finished_below(tree: Tree) -> list[bool]:
    """Per node id: True when the node's subtree (the node included) holds a terminal node."""
    finished = [False] * len(tree.nodes)
    for node in reversed(tree.nodes):  # children have larger ids than their parents
        finished[node.node_id] = node.is_terminal or any(finished[child] for child in node.children)
    return finished


def value_targets(
    tree: Tree, rewards: dict[int, NodeReward], target: str = "quality", nodes: str = "all"
) -> list[tuple[tuple[str, ...], float]]:
    """(steps, target) of every non-root node that has a reward (with `nodes="finished"`, only those with a
    terminal node below them), in node id order.

    `quality` gives v_k, which grows along a correct path (1/d, 2/d, ..., 1), so most of its spread
    is depth; `hard` gives r_k mapped to {0, 1}, the same at every depth, so siblings differ only
    by whether a correct answer was found below them.
    """
    if target not in TREE_TARGETS:
        raise ValueError(f"unknown tree value target {target!r}; expected one of {TREE_TARGETS}")
    if nodes not in VALUE_NODES:
        raise ValueError(f"unknown value node rule {nodes!r}; expected one of {VALUE_NODES}")
    keep = finished_below(tree) if nodes == "finished" else [True] * len(tree.nodes)
    return [
        (tree.steps_of(node.node_id),
         rewards[node.node_id].quality_value if target == "quality" else float(rewards[node.node_id].hard_estimate > 0))
        for node in tree.nodes[1:]
        if node.node_id in rewards and keep[node.node_id]
    ]
