"""The execution check in MCTS* (`Scorers.check`): a new step that fails it is pruned (terminal, value 0, its PRM
score kept), never selected nor picked as the answer while an unpruned terminal exists, and its parent is
expanded again; hand-built trees and fake models whose every answer is a function of the prefix."""

from __future__ import annotations

import math

import pytest

from search.expansion import prune_failed_steps
from search.mcts import (
    MCTSParams,
    Scorers,
    best_answer_node,
    best_leaf,
    complete_best_paths,
    exhausted_nodes,
    run_mcts,
    select_leaf,
    simulate,
)
from search.tree import Tree
from search.types import ProposedStep

# Fakes.

PRM = {"a\n": 0.4, "b\n": 0.9, "c\n": 0.6}


def fixed_propose(texts, is_final=False):
    """The same steps, in this order, for every prefix."""

    def propose(prefixes, num_samples):
        return [[ProposedStep(text, 1, is_final) for text in texts[:num_samples]] for _ in prefixes]

    return propose


def prm_by_text(prefixes):
    """The PRM value of the last step's text (0.5 for another text)."""
    return [PRM.get(prefix.steps[-1], 0.5) for prefix in prefixes]


class Check:
    """Fails every step whose text starts with one of `failing`; records each batch (the steps checked)."""

    def __init__(self, *failing: str):
        self.failing = failing
        self.batches: list[list[tuple[str, ...]]] = []

    def __call__(self, prefixes):
        self.batches.append([prefix.steps for prefix in prefixes])
        return [not prefix.steps[-1].startswith(self.failing) for prefix in prefixes]


def pruned_child(tree: Tree, parent: int, text: str, prm_score: float = 0.8) -> int:
    """A child as `prune_failed_steps` leaves one that failed: terminal, value 0, its PRM score kept."""
    node_id = tree.add_child(parent, text, num_tokens=1, prm_score=prm_score, is_terminal=True)
    node = tree.nodes[node_id]
    node.pruned, node.value = True, 0.0
    return node_id


PARAMS = MCTSParams(branch=3, max_simulations=8)


# Expansion prunes the steps that fail.


def test_a_child_that_fails_the_check_is_pruned_terminal_worth_zero_with_its_prm_score_kept():
    tree = Tree.new("p", "Q\n")
    check = Check("b")
    simulate([tree], fixed_propose(["a\n", "b\n", "c\n"]), Scorers(prm_by_text, check=check), PARAMS)
    a, b, c = (tree.nodes[i] for i in tree.root.children)
    assert (b.step_text, b.pruned, b.is_terminal, b.value, b.prm_score) == ("b\n", True, True, 0.0, 0.9)
    for node, score in ((a, 0.4), (c, 0.6)):
        assert (node.pruned, node.is_terminal, node.value, node.prm_score) == (False, False, score, score)
    assert tree.step_checks == 3
    assert check.batches == [[("a\n",), ("b\n",), ("c\n",)]]  # one call for every new child
    assert tree.root.visit_count == 1 and tree.simulation_count == 1


def test_the_checks_of_trees_searched_together_are_one_call_counted_per_tree():
    trees = [Tree.new("p1", "Q1\n"), Tree.new("p2", "Q2\n")]
    check = Check("a")
    simulate(trees, fixed_propose(["a\n", "c\n"]), Scorers(prm_by_text, check=check), PARAMS)
    assert len(check.batches) == 1 and len(check.batches[0]) == 4
    assert [tree.step_checks for tree in trees] == [2, 2]
    assert [[tree.nodes[i].pruned for i in tree.root.children] for tree in trees] == [[True, False], [True, False]]


def test_without_a_check_nothing_is_pruned_or_counted():
    for score in (prm_by_text, Scorers(prm_by_text)):
        tree = Tree.new("p", "Q\n")
        simulate([tree], fixed_propose(["a\n", "b\n", "c\n"]), score, PARAMS)
        assert not any(node.pruned for node in tree.nodes) and tree.step_checks == 0


def test_a_check_that_returns_the_wrong_number_of_verdicts_is_an_error():
    tree = Tree.new("p", "Q\n")
    child = tree.add_child(0, "a\n", 1, 0.4)
    with pytest.raises(ValueError, match="1 verdicts for 2 steps"):
        prune_failed_steps([(tree, 0), (tree, child)], Scorers(prm_by_text, check=lambda prefixes: [True]))


# Selection.


def test_select_leaf_never_selects_a_pruned_child_even_unvisited():
    # root (N 2) ─ P pruned (V 0, unvisited: 0 + 1 would win) ; root ─ C (N 1, V 0.3: 0.3 + 0.4·sqrt(2 ln 2) ≈ 0.77).
    tree = Tree.new("p", "Q\n")
    pruned_child(tree, 0, "p\n")
    c = tree.add_child(0, "c\n", 1, 0.3)
    tree.root.visit_count, tree.nodes[c].visit_count = 2, 1
    assert select_leaf(tree, MCTSParams()) == c
    tree.nodes[c].is_terminal = True  # also when the only other child is terminal
    assert select_leaf(tree, MCTSParams()) == c


def test_select_leaf_returns_a_node_whose_children_are_all_pruned_to_be_expanded_again():
    # root (N 3) ─ A (N 2, V 0.5) ─ A1, A2 both pruned ; root ─ B (N 1, V 0.2).
    # UCT: A 0.5 + 0.4·sqrt(2 ln 3 / 2) ≈ 0.92 beats B 0.2 + 0.4·sqrt(2 ln 3) ≈ 0.79.
    tree = Tree.new("p", "Q\n")
    a = tree.add_child(0, "a\n", 1, 0.5)
    b = tree.add_child(0, "b\n", 1, 0.2)
    pruned_child(tree, a, "a1\n")
    pruned_child(tree, a, "a2\n")
    tree.root.visit_count, tree.nodes[a].visit_count, tree.nodes[b].visit_count = 3, 2, 1
    assert 0.5 + 0.4 * math.sqrt(math.log(3)) > 0.2 + 0.4 * math.sqrt(2 * math.log(3))
    assert select_leaf(tree, MCTSParams()) == a
    assert select_leaf(tree, MCTSParams(first_path_first=True)) == a  # the first path ends at A too
    assert select_leaf(tree, MCTSParams(stop_at_end_gate=False)) == a
    # The root with only pruned children is returned itself.
    lone = Tree.new("p", "Q\n")
    pruned_child(lone, 0, "x\n")
    assert select_leaf(lone, MCTSParams()) == 0


def test_a_node_whose_children_are_all_pruned_gets_new_candidates_and_is_pruned_when_none_come():
    tree = Tree.new("p", "Q\n")
    a = tree.add_child(0, "a\n", 1, 0.5)
    pruned_child(tree, a, "x\n")
    tree.root.visit_count = tree.nodes[a].visit_count = 1
    check = Check("x")
    # New candidates: only the new text is added (the pruned one is a duplicate) and checked.
    simulate([tree], fixed_propose(["x\n", "c\n"]), Scorers(prm_by_text, check=check), MCTSParams(branch=2))
    assert [tree.nodes[i].step_text for i in tree.nodes[a].children] == ["x\n", "c\n"]
    assert check.batches == [[("a\n", "c\n")]] and not tree.nodes[a].pruned
    # Nothing new: the node itself becomes pruned (terminal, value 0) and is never selected again.
    again = Tree.new("p", "Q\n")
    a = again.add_child(0, "a\n", 1, 0.5)
    again.add_child(0, "b\n", 1, 0.2)
    pruned_child(again, a, "x\n")
    again.root.visit_count, again.nodes[a].visit_count, again.nodes[2].visit_count = 3, 2, 1
    simulate([again], fixed_propose(["x\n"]), Scorers(prm_by_text, check=Check("x")), MCTSParams(branch=1))
    node = again.nodes[a]
    assert (node.pruned, node.is_terminal, node.value) == (True, True, 0.0)
    assert again.step_checks == 0  # no new step, nothing checked
    assert select_leaf(again, MCTSParams()) == 2


# Exhaustion.


def test_exhausted_nodes_treats_a_node_with_only_pruned_children_as_not_exhausted():
    # root ─ A ─ A1 pruned, A2 pruned ; root ─ B terminal.
    tree = Tree.new("p", "Q\n")
    a = tree.add_child(0, "a\n", 1, 0.5)
    b = tree.add_child(0, "b\n", 1, 0.5, is_terminal=True)
    a1, a2 = pruned_child(tree, a, "a1\n"), pruned_child(tree, a, "a2\n")
    assert exhausted_nodes(tree) == [False, False, True, True, True]
    assert (a1, a2, b) == (3, 4, 2)
    # With an unpruned terminal child beside the pruned ones, A is exhausted, and so is the root.
    tree.add_child(a, "a3\n", 1, 0.5, is_terminal=True)
    assert exhausted_nodes(tree) == [True, True, True, True, True, True]


def test_a_search_spending_its_budget_is_not_stopped_as_exhausted_by_pruned_leaves():
    # Every leaf is terminal (the pruned ones are), but A is expanded again: the search goes on.
    tree = Tree.new("p", "Q\n")
    a = tree.add_child(0, "a\n", 1, 0.5)
    pruned_child(tree, a, "x\n")
    tree.root.visit_count = tree.nodes[a].visit_count = 1
    assert all(tree.nodes[i].is_terminal for i in tree.leaves())
    params = MCTSParams(branch=1, stop_at_end_gate=False, max_simulations=2)
    simulate([tree], fixed_propose(["c\n"]), Scorers(prm_by_text, check=Check("x")), params)
    assert tree.stop_reason == "" and [tree.nodes[i].step_text for i in tree.nodes[a].children] == ["x\n", "c\n"]


# Reading the answer.


def test_the_answer_is_never_a_pruned_node_when_an_unpruned_terminal_exists():
    # root ─ P pruned (its V set high by hand, and first proposed: it would win any tie) ; root ─ T terminal, V 0.1.
    tree = Tree.new("p", "Q\n")
    p = pruned_child(tree, 0, "p\n", prm_score=0.99)
    t = tree.add_child(0, "t\n", 1, 0.1, is_terminal=True)
    tree.nodes[p].value = 0.95
    assert best_answer_node(tree) == t
    assert best_answer_node(tree, margin=1.0) == t
    assert best_answer_node(tree, extract_answer=lambda steps: steps[-1].strip()) == t
    # With only pruned terminals, the best of them answers (a tree always answers when it holds a terminal).
    only = Tree.new("p", "Q\n")
    first = pruned_child(only, 0, "p\n")
    pruned_child(only, 0, "q\n")
    assert best_answer_node(only) == first


def test_best_leaf_passes_over_pruned_children():
    # root ─ P pruned (V set 0.9 by hand) ; root ─ A (V 0.3) ─ A1 pruned.
    tree = Tree.new("p", "Q\n")
    p = pruned_child(tree, 0, "p\n")
    tree.nodes[p].value = 0.9
    a = tree.add_child(0, "a\n", 1, 0.3)
    pruned_child(tree, a, "a1\n")
    assert best_leaf(tree) == a


def test_complete_best_paths_completes_a_tree_whose_terminals_are_all_pruned_without_checking_the_completion():
    tree = Tree.new("p", "Q\n")
    a = tree.add_child(0, "a\n", 1, 0.3)
    pruned_child(tree, a, "bad\n")
    check = Check("g")  # would fail the completion's steps

    def greedy(prefixes):
        return [ProposedStep("g\n", 1, True) for _ in prefixes]

    complete_best_paths([tree], greedy, Scorers(prm_by_text, check=check), max_depth=5)
    completed = best_answer_node(tree)
    assert tree.steps_of(completed) == ("a\n", "g\n") and not tree.nodes[completed].pruned
    assert check.batches == [] and tree.step_checks == 0
    # A tree holding an unpruned terminal is left alone.
    done = Tree.new("p", "Q\n")
    done.add_child(0, "t\n", 1, 0.5, is_terminal=True)
    complete_best_paths([done], greedy, Scorers(prm_by_text, check=check), max_depth=5)
    assert len(done.nodes) == 2


# A whole search.


class ResamplingPolicy:
    """Steps r1, r2, r3 (r3 final) lead to the answer. At depth `trap_depth`, the first proposal for a prefix is
    the final step 'wrong\\n' (which the PRM loves); each later call for that prefix proposes the right step."""

    def __init__(self, trap_depth: int):
        self.trap_depth = trap_depth
        self.calls: dict[tuple[str, ...], int] = {}

    def propose(self, prefixes, num_samples):
        proposals = []
        for prefix in prefixes:
            depth = len(prefix.steps) + 1
            seen = self.calls.get(prefix.steps, 0)
            self.calls[prefix.steps] = seen + 1
            if depth == self.trap_depth and seen == 0:
                step = ProposedStep("wrong\n", 1, True)
            else:
                step = ProposedStep(f"r{depth}\n", 1, depth == 3)
            proposals.append([step] * num_samples)
        return proposals

    @staticmethod
    def score(prefixes):
        return [0.99 if prefix.steps[-1] == "wrong\n" else 0.95 for prefix in prefixes]


@pytest.mark.parametrize("trap_depth", [1, 2, 3])
def test_run_mcts_with_a_check_resamples_the_failed_step_and_finds_the_right_path(trap_depth):
    params = MCTSParams(branch=1, max_simulations=10)
    policy, check = ResamplingPolicy(trap_depth), Check("wrong")
    [tree] = run_mcts([("p", "Q\n")], policy.propose, Scorers(policy.score, check=check), params)
    answer = best_answer_node(tree)
    assert tree.steps_of(answer) == ("r1\n", "r2\n", "r3\n") and not tree.nodes[answer].pruned
    assert tree.stop_reason == "end_gate"
    wrong = [node for node in tree.nodes if node.step_text == "wrong\n"]
    assert len(wrong) == 1 and wrong[0].pruned and wrong[0].prm_score == 0.99 and wrong[0].value == 0.0
    assert tree.step_checks == 4  # r1, r2, r3 and the wrong step
    # Without the check the search stops at the wrong final step, which the PRM scores above the end gate.
    [unchecked] = run_mcts([("p", "Q\n")], ResamplingPolicy(trap_depth).propose, ResamplingPolicy.score, params)
    assert unchecked.steps_of(best_answer_node(unchecked))[-1] == "wrong\n"
