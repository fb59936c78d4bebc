"""MCTS*'s selection and backup: the UCT score of a child, the walk from the root to the leaf to expand next (a node
whose subtree is exhausted is never chosen again), when a visited node is widened with more children, and the
value backup along the path."""

from __future__ import annotations

import math

from search.params import MCTSParams
from search.tree import Node, Tree


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
