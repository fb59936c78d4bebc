"""MCTS*'s expansion and rollouts, batched across trees: new children proposed for every selected leaf in one call,
steps that fail the execution check pruned, the new nodes scored in one call (`Scorers`: the PRM, the check and a
verifier), and greedy-by-value rollouts level by level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.params import MCTSParams
from search.tree import Tree
from search.types import (
    CheckFn,
    Prefix,
    ProposedStep,
    ProposeFn,
    ScoreFn,
    VerifyFn,
    checked_propose,
    checked_score,
    checked_verify,
    prm_as_verifier,
)


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


def expand(
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


def roll_forward(starts: list[tuple[Tree, int]], propose: ProposeFn, score: ScoreFn, params: MCTSParams) -> None:
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
