"""MCTS* of ReST-MCTS* (Zhang et al., NeurIPS 2024): PRM-guided search over reasoning steps, batched across trees.

The language models enter only through `propose` and `score` (search/types.py). One call of
`simulate` runs one simulation on every running tree and makes one `propose` call for all the
leaves it expands, one `score` call for all their new children, and one `propose` plus one
`score` call per rollout level. Because each tree's search depends only on its own nodes and on
the answers for its own prefixes, a tree searched in a batch ends exactly as it would alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from search.tree import Node, Tree
from search.types import (
    AnswerFn,
    CheckFn,
    GreedyFn,
    Prefix,
    ProposedStep,
    ProposeFn,
    ScoreFn,
    VerifyFn,
    checked_propose,
    checked_score,
    checked_verify,
    prm_as_verifier,
    readable_first,
)


@dataclass(frozen=True)
class MCTSParams:
    """Search settings of MCTS*; defaults follow the official ReST-MCTS* code."""

    branch: int = 3
    """Candidate next steps sampled per expansion (and per rollout level)."""
    initial_branch: int = 0
    """Candidates at a node's first expansion (0: `branch`). With fewer, the node is widened later (progressive
    widening, `widen_branch` more candidates at a time) while it has fewer than `branch` children and the PRM values
    every child below `widen_below`: the first path costs one solution's tokens, and alternatives are sampled
    only where the scorer doubts a step."""
    widen_branch: int = 2
    """Candidates sampled per widening (with a sampler that proposes the argmax step first, the first of them
    repeats an existing child and is dropped)."""
    widen_below: float = 0.5
    """A node is widened while every child's value is below this (see `initial_branch`)."""
    widen_visits: int = 0
    """Count-based progressive widening beside the value rule: a node is also widened once it has been visited
    `widen_visits` times per child it has (0: only by value). The search then samples alternatives even under a
    step the scorer trusts wrongly, which the value rule alone never does."""
    exploration_constant: float = 0.4
    """c in the UCT score V + c·sqrt(2·ln N_parent / N_child)."""
    unvisited_bonus: float = 1.0
    """b: an unvisited child scores V + b (finite, so a strong visited sibling can still win)."""
    roll_forward_steps: int = 0
    """Greedy rollout steps from the best new child after each expansion; 0 = no rollout."""
    rollout_alpha: float = 0.5
    """α in V ← (1 − α)·V + α·max(rollout values)."""
    end_gate: float = 0.9
    """A selected terminal leaf with V ≥ end_gate ends the search (when stop_at_end_gate)."""
    stop_at_end_gate: bool = True
    """True when solving; False to spend the full budget (generating training data), in which case
    selection skips exhausted subtrees (every leaf terminal) and never revisits a terminal leaf."""
    max_depth: int = 10
    """Steps below the root at which a node becomes terminal."""
    first_path_first: bool = False
    """Selection follows every node's first child until that path ends in a terminal node, one expansion per
    simulation, and only then uses UCT. With a sampler that proposes the argmax step first, the tree then holds
    the greedy solution (at the cost of one simulation per step) before it explores."""
    max_simulations: int = 16
    """Simulations per tree."""
    max_tokens: int = 0
    """Generated tokens per tree (kept, dropped and rollout); 0 = unlimited. May be exceeded by one expansion."""

    def __post_init__(self) -> None:
        if self.branch < 1:
            raise ValueError(f"branch must be at least 1, got {self.branch}")
        if not 0 <= self.initial_branch <= self.branch or self.widen_branch < 1 or self.widen_visits < 0:
            raise ValueError(f"initial_branch must lie in [0, branch], widen_branch be at least 1 and widen_visits "
                             f"at least 0, got {self.initial_branch}, {self.widen_branch} and {self.widen_visits}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")
        if self.max_simulations < 1:
            raise ValueError(f"max_simulations must be at least 1, got {self.max_simulations}")
        if self.roll_forward_steps < 0 or self.max_tokens < 0:
            raise ValueError("roll_forward_steps and max_tokens must not be negative")
        if not 0.0 <= self.rollout_alpha <= 1.0:
            raise ValueError(f"rollout_alpha must lie in [0, 1], got {self.rollout_alpha}")


# Selection ------------------------------------------------------------------------------------


def uct_score(child: Node, parent_visit_count: int, params: MCTSParams) -> float:
    """The UCT score of `child` under a parent visited `parent_visit_count` times.

    Visited: V + c·sqrt(2·ln N_parent / N_child). Unvisited: V + b, the official code's finite
    bonus, so an unvisited child with a poor PRM score can lose to a good visited sibling.
    """
    if child.visit_count == 0:
        return child.value + params.unvisited_bonus
    exploration = math.sqrt(2.0 * math.log(parent_visit_count) / child.visit_count)
    return child.value + params.exploration_constant * exploration


def exhausted_nodes(tree: Tree) -> list[bool]:
    """Per node id: True when the node's subtree is exhausted, i.e. every leaf in it is terminal.

    A terminal node is exhausted, a non-terminal leaf is not, and an inner node is exhausted when all its children
    that are not pruned are; a node whose children are all pruned is not (it is expanded again, see `select_leaf`).
    One pass over the nodes in reverse id order, which visits every child before its parent because
    `Tree.add_child` gives a child a higher id than its parent.
    """
    exhausted = [False] * len(tree.nodes)
    for node in reversed(tree.nodes):
        alive = [child_id for child_id in node.children if not tree.nodes[child_id].pruned]
        exhausted[node.node_id] = node.is_terminal or (bool(alive) and all(exhausted[i] for i in alive))
    return exhausted


def select_leaf(tree: Tree, params: MCTSParams) -> int:
    """Descend from the root by the highest UCT score (ties: lowest node id); returns the leaf's id.

    Pruned children (failed the execution check) are never selected; a node whose children are all pruned is
    returned itself, to be expanded again with new candidates (the failed step resampled, not the whole solution).

    With `first_path_first`, the node at the end of the first-child path (first child not pruned) is returned
    instead while it is not terminal.

    When spending the full budget (`stop_at_end_gate` False), children whose subtrees are
    exhausted (every leaf terminal) are skipped, so the descent ends at a non-terminal leaf while
    the tree has one, and the budget goes to unexplored steps rather than to revisiting finished
    ones. When the whole tree is exhausted, or when solving, every child competes and the descent
    may end at a terminal leaf.
    """
    def alive(node: Node) -> list[int]:
        return [child_id for child_id in node.children if not tree.nodes[child_id].pruned]

    if params.first_path_first:
        node = tree.root
        while alive(node):
            node = tree.nodes[alive(node)[0]]
        if not node.is_terminal:
            return node.node_id
    skip: list[bool] | None = None
    if not params.stop_at_end_gate:
        exhausted = exhausted_nodes(tree)
        if not exhausted[tree.root.node_id]:
            skip = exhausted
    node = tree.root
    while alive(node):
        if widenable(tree, node, params):
            return node.node_id
        best_score = -math.inf
        best_child = node
        for child_id in alive(node):
            if skip is not None and skip[child_id]:
                continue
            child = tree.nodes[child_id]
            child_score = uct_score(child, node.visit_count, params)
            if child_score > best_score:
                best_score, best_child = child_score, child
        if best_child is node:
            break
        node = best_child
    return node.node_id


def widenable(tree: Tree, node: Node, params: MCTSParams) -> bool:
    """Whether selection stops at the expanded `node` to sample more candidates under it: every child is pruned (the
    step is sampled again), or, with progressive widening (`initial_branch`), it has fewer than `branch` children
    and every child's value is below `widen_below` or (with `widen_visits`) it has been visited `widen_visits`
    times per child."""
    if not node.children or node.is_terminal:
        return False
    alive = [tree.nodes[child_id] for child_id in node.children if not tree.nodes[child_id].pruned]
    if not alive:
        return True
    if params.initial_branch == 0 or node.saturated or len(node.children) >= params.branch:
        return False
    return (max(child.value for child in alive) < params.widen_below
            or 0 < params.widen_visits * len(node.children) <= node.visit_count)


# Backup ---------------------------------------------------------------------------------------


def backup(tree: Tree, node_id: int) -> None:
    """Count one visit on every node from `node_id` up to the root and refresh their values.

    The official ReST-MCTS* rule: each node on the path gets visit_count + 1, then its V becomes
    the visit-weighted mean of its visited children's V, sum(N_c·V_c) / sum(N_c). Children with
    visit_count 0 carry no weight, so a node that was just expanded (whose new children are all
    unvisited) keeps its own V until one of them is visited; a node with no visited child keeps
    its V. Nodes are updated bottom-up, so each parent sees its child's new count and value.
    """
    for path_node_id in reversed(tree.path_to(node_id)):
        node = tree.nodes[path_node_id]
        node.visit_count += 1
        weighted_sum = 0.0
        total_visits = 0
        for child_id in node.children:
            child = tree.nodes[child_id]
            weighted_sum += child.visit_count * child.value
            total_visits += child.visit_count
        if total_visits > 0:
            node.value = weighted_sum / total_visits


# Expansion and rollout ------------------------------------------------------------------------


def _usable_steps(steps: Sequence[ProposedStep], taken_texts: set[str]) -> tuple[list[ProposedStep], int]:
    """Drop whitespace-only steps and steps whose text is taken; returns (kept steps, dropped tokens)."""
    kept = []
    dropped_tokens = 0
    for step in steps:
        if not step.text.strip() or step.text in taken_texts:
            dropped_tokens += step.num_tokens
            continue
        taken_texts.add(step.text)
        kept.append(step)
    return kept, dropped_tokens


@dataclass(frozen=True)
class Scorers:
    """What values MCTS*'s nodes: the PRM (`score`), and optionally a verifier for terminal children in its place
    (`leaf_verify`, e.g. GenRM-CoT) and a verifier for the other children (`step_verify`, a generative step
    scorer). Verifiers' generated tokens are charged to the tree (`Tree.verifier_tokens`)."""

    score: ScoreFn
    leaf_verify: VerifyFn | None = None
    step_verify: VerifyFn | None = None
    check: CheckFn | None = None
    """An execution check of each new step (`search.types.CheckFn`): a step that fails is pruned (`Node.pruned`)."""


def prune_failed_steps(nodes: list[tuple[Tree, int]], scorers: Scorers | ScoreFn) -> None:
    """Run the execution check (`Scorers.check`) on each (tree, node) and prune those that fail: terminal, value 0.
    One call for all nodes; each check counts in its tree's `step_checks`."""
    if not isinstance(scorers, Scorers) or scorers.check is None or not nodes:
        return
    passed = scorers.check([tree.prefix_of(node_id) for tree, node_id in nodes])
    if len(passed) != len(nodes):
        raise ValueError(f"check returned {len(passed)} verdicts for {len(nodes)} steps")
    for (tree, node_id), ok in zip(nodes, passed):
        tree.step_checks += 1
        if not ok:
            node = tree.nodes[node_id]
            node.pruned, node.is_terminal, node.value = True, True, 0.0


def score_nodes(nodes: list[tuple[Tree, int]], scorers: Scorers | ScoreFn) -> list[float]:
    """The value of each (tree, node): terminal nodes by `leaf_verify`, others by `step_verify`, each falling
    back to the PRM; one call per scorer used, verifier tokens charged to each node's tree."""
    if not isinstance(scorers, Scorers):
        scorers = Scorers(scorers)
    prm = prm_as_verifier(scorers.score)
    groups: dict[int, tuple[VerifyFn, list[int]]] = {}
    for index, (tree, node_id) in enumerate(nodes):
        verify = (scorers.leaf_verify if tree.nodes[node_id].is_terminal else scorers.step_verify) or prm
        groups.setdefault(id(verify), (verify, []))[1].append(index)
    values = [0.0] * len(nodes)
    for verify, indices in groups.values():
        verdicts = checked_verify(verify, [nodes[i][0].prefix_of(nodes[i][1]) for i in indices])
        for i, value, tokens in zip(indices, verdicts.scores, verdicts.tokens_generated):
            values[i] = value
            nodes[i][0].verifier_tokens += tokens
    return values


def _expand(
    requests: list[tuple[Tree, int]], propose: ProposeFn, score: Scorers | ScoreFn, params: MCTSParams
) -> list[list[int]]:
    """Expand each (tree, leaf): one batched propose, one batched scoring per scorer (`score_nodes`); returns the
    new child ids per request.

    A new child's value is its score (the PRM's, or a verifier's: see `Scorers`). It is terminal when its step is
    final or it sits at max_depth. A leaf whose proposals were all dropped (the sampler produced only empty steps,
    i.e. it ended the solution there) becomes terminal itself, so it is never expanded again.
    """
    if not requests:
        return []
    first = params.initial_branch or params.branch
    counts = [params.widen_branch if tree.nodes[leaf].children else first for tree, leaf in requests]
    proposals: list[list[ProposedStep]] = [[] for _ in requests]
    for count in sorted(set(counts)):  # one propose call per candidate count (first expansions, widenings)
        indices = [i for i, c in enumerate(counts) if c == count]
        for i, steps in zip(indices, checked_propose(propose, [requests[i][0].prefix_of(requests[i][1])
                                                               for i in indices], count)):
            proposals[i] = steps
    new_children: list[list[int]] = []
    for (tree, leaf), steps in zip(requests, proposals):
        leaf_node = tree.nodes[leaf]
        sibling_texts = {tree.nodes[child_id].step_text for child_id in leaf_node.children}
        kept, dropped_tokens = _usable_steps(steps, sibling_texts)
        tree.dropped_tokens += dropped_tokens
        child_is_at_depth_limit = leaf_node.depth + 1 >= params.max_depth
        child_ids = [
            tree.add_child(leaf, step.text, step.num_tokens, is_terminal=step.is_final or child_is_at_depth_limit)
            for step in kept
        ]
        if not child_ids:
            alive = [c for c in leaf_node.children if not tree.nodes[c].pruned]
            if alive:  # a widening that brought nothing new
                leaf_node.saturated = True
            else:
                leaf_node.is_terminal = True
                if leaf_node.children:  # expanded again after every candidate failed its check, and nothing new came
                    leaf_node.pruned, leaf_node.value = True, 0.0
        new_children.append(child_ids)
    scored = [(tree, child_id) for (tree, _), child_ids in zip(requests, new_children) for child_id in child_ids]
    if scored:
        scores = score_nodes(scored, score)
        for (tree, child_id), prm_score in zip(scored, scores):
            child = tree.nodes[child_id]
            child.prm_score = prm_score
            child.value = prm_score
        prune_failed_steps(scored, score)
    return new_children


@dataclass
class _Rollout:
    tree: Tree
    node_id: int
    prefix: Prefix
    best_value_seen: float | None = None
    finished: bool = False


def _roll_forward(starts: list[tuple[Tree, int]], propose: ProposeFn, score: ScoreFn, params: MCTSParams) -> None:
    """The ReST-MCTS* rollout from each (tree, node): greedy by PRM score, then V ← (1 − α)·V + α·max.

    Each level samples `branch` steps, scores the usable ones and follows the best (ties: first
    sampled), until `roll_forward_steps` levels, a final step or max_depth. max is taken over the
    values of the followed steps. The states are not kept; their tokens go to `tree.rollout_tokens`.
    All rollouts advance together: one propose and one score call per level.
    """
    rollouts = [_Rollout(tree, node_id, tree.prefix_of(node_id)) for tree, node_id in starts]
    for _ in range(params.roll_forward_steps):
        running = [rollout for rollout in rollouts if not rollout.finished]
        if not running:
            break
        proposals = checked_propose(propose, [rollout.prefix for rollout in running], params.branch)
        kept_per_rollout = []
        for rollout, steps in zip(running, proposals):
            rollout.tree.rollout_tokens += sum(step.num_tokens for step in steps)
            kept, _ = _usable_steps(steps, set())
            kept_per_rollout.append(kept)
        candidates = [
            rollout.prefix.extend(step.text) for rollout, kept in zip(running, kept_per_rollout) for step in kept
        ]
        if not candidates:
            break
        scores = iter(checked_score(score, candidates))
        for rollout, kept in zip(running, kept_per_rollout):
            if not kept:
                rollout.finished = True
                continue
            values = [next(scores) for _ in kept]
            best_index = max(range(len(kept)), key=lambda index: (values[index], -index))
            if rollout.best_value_seen is None or values[best_index] > rollout.best_value_seen:
                rollout.best_value_seen = values[best_index]
            rollout.prefix = rollout.prefix.extend(kept[best_index].text)
            rollout.finished = kept[best_index].is_final or len(rollout.prefix.steps) >= params.max_depth
    for rollout in rollouts:
        if rollout.best_value_seen is not None:
            node = rollout.tree.nodes[rollout.node_id]
            alpha = params.rollout_alpha
            node.value = (1.0 - alpha) * node.value + alpha * rollout.best_value_seen


# The search loop ------------------------------------------------------------------------------


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

    new_children = _expand(to_expand, propose, score, params)
    if params.roll_forward_steps > 0:
        rollout_starts = []
        for (tree, _), child_ids in zip(to_expand, new_children):
            if not child_ids:
                continue
            best_child_id = max(child_ids, key=lambda child_id: (tree.nodes[child_id].prm_score, -child_id))
            if not tree.nodes[best_child_id].is_terminal:
                rollout_starts.append((tree, best_child_id))
        _roll_forward(rollout_starts, propose, score.score if isinstance(score, Scorers) else score, params)
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


# Reading the answer ---------------------------------------------------------------------------


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
