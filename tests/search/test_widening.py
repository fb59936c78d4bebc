"""Progressive widening in MCTS* (`MCTSParams.initial_branch`): a node's first expansion samples `initial_branch`
candidates, and more (`widen_branch` at a time) only while it has fewer than `branch` children that the scorer
values all below `widen_below`; a widening that brings nothing new saturates the node."""

from __future__ import annotations

import pytest

from search.mcts import MCTSParams, Scorers, run_mcts, select_leaf, simulate
from search.selection import widenable
from search.tree import Tree
from search.types import ProposedStep


def cycling_propose(texts, final=()):
    """Proposes `texts` in turn, continuing where the last call for the same prefix stopped (so a widening gets new
    candidates); a text in `final` ends the solution."""
    calls: dict[tuple[str, ...], int] = {}

    def propose(prefixes, num_samples):
        out = []
        for prefix in prefixes:
            start = calls.get(prefix.steps, 0)
            calls[prefix.steps] = start + num_samples
            picked = [texts[(start + i) % len(texts)] for i in range(num_samples)]
            out.append([ProposedStep(t, 2, t in final) for t in picked])
        return out

    return propose


def score_by_text(values):
    return lambda prefixes: [values.get(prefix.steps[-1], 0.5) for prefix in prefixes]


def test_the_first_expansion_samples_initial_branch_candidates():
    tree = Tree.new("p", "Q\n")
    params = MCTSParams(branch=3, initial_branch=1, max_simulations=1)
    simulate([tree], cycling_propose(["a\n", "b\n", "c\n"]), score_by_text({}), params)
    assert [tree.nodes[i].step_text for i in tree.root.children] == ["a\n"]
    assert tree.tokens_used == 2


def test_a_node_whose_children_all_score_below_widen_below_is_widened_until_branch_children():
    tree = Tree.new("p", "Q\n")
    params = MCTSParams(branch=3, initial_branch=1, widen_branch=1, widen_below=0.5, max_simulations=3,
                        stop_at_end_gate=True)
    values = {"a\n": 0.2, "b\n": 0.3, "c\n": 0.1}
    propose = cycling_propose(["a\n", "b\n", "c\n"])
    for _ in range(3):
        simulate([tree], propose, score_by_text(values), params)
    assert [tree.nodes[i].step_text for i in tree.root.children] == ["a\n", "b\n", "c\n"]
    assert not widenable(tree, tree.root, params)  # branch children reached


def test_a_node_with_a_child_valued_at_widen_below_or_more_is_not_widened():
    tree = Tree.new("p", "Q\n")
    child = tree.add_child(0, "a\n", prm_score=0.7)
    tree.root.visit_count = 1
    params = MCTSParams(branch=3, initial_branch=1, widen_below=0.5)
    assert not widenable(tree, tree.root, params)
    assert select_leaf(tree, params) == child
    tree.nodes[child].value = 0.3
    assert widenable(tree, tree.root, params) and select_leaf(tree, params) == 0


def test_without_progressive_widening_only_fully_pruned_nodes_are_expanded_again():
    tree = Tree.new("p", "Q\n")
    tree.add_child(0, "a\n", prm_score=0.1)
    params = MCTSParams(branch=3, initial_branch=0)
    assert not widenable(tree, tree.root, params)


def test_a_widening_that_brings_nothing_new_saturates_the_node():
    tree = Tree.new("p", "Q\n")
    params = MCTSParams(branch=3, initial_branch=1, widen_branch=2, widen_below=0.5, max_simulations=4,
                        stop_at_end_gate=True)
    propose = cycling_propose(["a\n"])  # every call proposes the same step
    for _ in range(3):
        simulate([tree], propose, score_by_text({"a\n": 0.2}), params)
    assert tree.root.saturated and len(tree.root.children) == 1
    assert not tree.root.is_terminal and not tree.root.pruned
    assert not widenable(tree, tree.root, params)


def test_widening_finds_a_right_step_the_first_candidate_missed_at_a_token_cost_below_full_expansion():
    values = {"bad\n": 0.1, "good\n": 0.8, "end\n": 0.95}
    def propose_factory():
        inner = cycling_propose(["bad\n", "good\n", "other\n"])
        def propose(prefixes, n):
            return [[ProposedStep("end\n", 2, True)] * n if prefix.steps and prefix.steps[-1] == "good\n" else row
                    for prefix, row in zip(prefixes, inner(prefixes, n))]
        return propose
    widened = run_mcts([("p", "Q\n")], propose_factory(), Scorers(score_by_text(values)),
                       MCTSParams(branch=3, initial_branch=1, widen_branch=1, max_simulations=8))[0]
    full = run_mcts([("p", "Q\n")], propose_factory(), Scorers(score_by_text(values)),
                    MCTSParams(branch=3, max_simulations=8))[0]
    for tree in (widened, full):
        assert any(tree.nodes[i].step_text == "end\n" for i in tree.terminal_nodes())
    assert widened.tokens_used < full.tokens_used


def test_initial_branch_above_branch_is_refused():
    with pytest.raises(ValueError, match="initial_branch"):
        MCTSParams(branch=2, initial_branch=3)


def test_widen_visits_widens_a_trusted_node_once_it_has_that_many_visits_per_child():
    tree = Tree.new("p", "Q\n")
    tree.add_child(0, "a\n", prm_score=0.9)
    params = MCTSParams(branch=3, initial_branch=1, widen_below=0.5, widen_visits=2)
    tree.root.visit_count = 1
    assert not widenable(tree, tree.root, params)
    tree.root.visit_count = 2
    assert widenable(tree, tree.root, params)
    tree.add_child(0, "b\n", prm_score=0.9)
    assert not widenable(tree, tree.root, params)  # two children need four visits
    tree.root.visit_count = 4
    assert widenable(tree, tree.root, params)
    assert not widenable(tree, tree.root, MCTSParams(branch=3, initial_branch=1, widen_below=0.5, widen_visits=0))


def test_widen_visits_reaches_branch_children_at_the_root_under_a_scorer_that_trusts_every_step():
    tree = Tree.new("p", "Q\n")
    params = MCTSParams(branch=3, initial_branch=1, widen_branch=1, widen_below=0.5, widen_visits=2,
                        max_simulations=8, max_depth=4, stop_at_end_gate=False)
    propose = cycling_propose(["a\n", "b\n", "c\n"])
    for _ in range(8):
        simulate([tree], propose, score_by_text({"a\n": 0.9, "b\n": 0.9, "c\n": 0.9}), params)
    assert len(tree.root.children) == 3
    with pytest.raises(ValueError, match="widen_visits"):
        MCTSParams(initial_branch=1, widen_visits=-1)
