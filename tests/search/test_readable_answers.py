"""Choosing a final solution among those whose answer can be read: `best_answer_node`, `best_of_n`, `with_answers`
and the beam / ToT final choice let an unreadable solution win only when no solution can be read, and change
nothing when no answer reader is given."""

from __future__ import annotations

import pytest

from lm.data import Problem
from rest_mcts.round_metrics import mcts_metrics
from rest_mcts.tasks.modtarget import ModTargetTask
from search.baselines import Candidate, best_of_n, sampling_methods, with_answers
from search.level_search import LevelSearchParams, beam_search, tot_bfs
from search.mcts import best_answer_node
from search.tree import Tree
from search.types import ProposedStep


def answer_of(steps):
    """The digits after '=' on a final step; None for anything else ('=?' is a final step with no answer)."""
    if not steps or not steps[-1].startswith("="):
        return None
    answer = steps[-1][1:].strip()
    return answer if answer.isdigit() else None


# best_answer_node ---------------------------------------------------------------------------


def tree_of(terminals) -> Tree:
    """Root children in order, each (text, value, is_terminal); V set to the given value."""
    tree = Tree.new("p", "Q\n")
    for text, value, is_terminal in terminals:
        tree.add_child(0, text, prm_score=value, is_terminal=is_terminal)
    for node in tree.nodes[1:]:
        node.value = node.prm_score
    return tree


# Node ids 1-5: an unreadable terminal valued highest, two readable ones, a non-terminal valued higher still
# (never an answer), and a second unreadable terminal.
MIXED = [("=?", 0.9, True), ("=7", 0.5, True), ("=8", 0.625, True), ("=9", 0.95, False), ("giving up\n", 0.75, True)]


def test_a_higher_valued_unreadable_terminal_loses_to_a_readable_one():
    tree = tree_of(MIXED)
    assert best_answer_node(tree, 0.0, answer_of) == 3  # 0.625, the best readable; 0.9 and 0.75 have no answer
    assert best_answer_node(tree, extract_answer=answer_of) == 3


def test_without_a_reader_the_best_valued_terminal_wins_as_before():
    tree = tree_of(MIXED)
    assert best_answer_node(tree) == 1
    assert best_answer_node(tree, 0.0, None) == 1
    assert best_answer_node(tree, margin=0.2) == 1  # 0.75 is 0.15 below, the readable ones further
    assert best_answer_node(tree, margin=0.2, extract_answer=None) == 1


def test_the_margin_ties_readable_terminals_only():
    tree = tree_of(MIXED)
    # Readable: 0.625 (node 3) and 0.5 (node 2). Within 0.2 of 0.625 both tie, and the earlier-proposed (node 2)
    # wins; the unreadable 0.9 neither wins nor raises the bar that decides the tie.
    assert best_answer_node(tree, 0.2, answer_of) == 2
    assert best_answer_node(tree, 0.1, answer_of) == 3
    # Without a reader the same margin leaves only the unreadable terminals near 0.9.
    assert best_answer_node(tree, 0.2) == 1


def test_with_no_readable_terminal_the_highest_valued_one_is_still_returned():
    tree = tree_of([("=?", 0.5, True), ("giving up\n", 0.75, True), ("=7", 0.95, False), ("x\n", 0.25, True)])
    assert best_answer_node(tree, 0.0, answer_of) == 2 == best_answer_node(tree)
    assert best_answer_node(tree, 0.3, answer_of) == 1 == best_answer_node(tree, 0.3)  # the margin as before
    assert best_answer_node(Tree.new("p", "Q\n"), 0.0, answer_of) is None  # no terminal at all
    only_open = tree_of([("=7", 0.9, False)])
    assert best_answer_node(only_open, 0.0, answer_of) is None  # a readable non-terminal is no answer


def test_the_reader_reads_each_terminal_s_whole_path():
    # Readable only when the path starts with "ok\n": the reader sees the steps from the root, not the last one.
    tree = Tree.new("p", "Q\n")
    ok, bad = tree.add_child(0, "ok\n", prm_score=0.1), tree.add_child(0, "bad\n", prm_score=0.1)
    good_end = tree.add_child(ok, "=1", prm_score=0.25, is_terminal=True)
    bad_end = tree.add_child(bad, "=1", prm_score=0.75, is_terminal=True)
    for node in tree.nodes[1:]:
        node.value = node.prm_score
    seen = []

    def reader(steps):
        seen.append(tuple(steps))
        return answer_of(steps) if steps[0] == "ok\n" else None

    assert best_answer_node(tree, 0.0, reader) == good_end
    assert sorted(seen) == sorted([("ok\n", "=1"), ("bad\n", "=1")])  # terminals only, whole paths
    assert best_answer_node(tree) == bad_end


def test_mcts_metrics_read_the_answer_of_the_best_readable_terminal():
    # The evaluation passes the task's reader: a modtarget tree whose best-valued terminal is the former last-step
    # form (no answer) is answered by its honest, right terminal.
    task, question = ModTargetTask(), "2?5=7"
    tree = Tree.new("p", question)
    unreadable = tree.add_child(0, "2?5=770-;7=7\n", prm_score=0.9, is_terminal=True)
    right = tree.add_child(0, "2?5=770-7=003-\n", prm_score=0.5, is_terminal=True)
    for node in tree.nodes[1:]:
        node.value = node.prm_score
    assert task.extract_answer(tree.steps_of(unreadable)) is None
    assert task.extract_answer(tree.steps_of(right)) == "-"
    assert best_answer_node(tree) == unreadable  # what the search picked before
    metrics = mcts_metrics(task, [Problem("p", question, question)], [tree], "test")
    assert metrics["test/mcts/accuracy"] == 1.0


# best_of_n and with_answers ----------------------------------------------------------------------


UNREADABLE = Candidate(("a\n", "=?"), (0.9, 0.9), True)
LOW = Candidate(("b\n", "=1"), (0.5, 0.25), True)
HIGH = Candidate(("c\n", "=2"), (0.25, 0.5), True)
GIVEN_UP = Candidate(("d\n",), (0.75,), True)


@pytest.mark.parametrize("how", ["min", "prod", "last", "mean"])
def test_best_of_n_prefers_a_lower_scored_readable_candidate(how):
    assert best_of_n([UNREADABLE, LOW], how, answer_of) is LOW
    assert best_of_n([LOW, UNREADABLE], how, answer_of) is LOW
    assert best_of_n([UNREADABLE, LOW], how) is UNREADABLE  # without a reader, as before
    assert best_of_n([UNREADABLE, LOW], how, None) is UNREADABLE


def test_best_of_n_ranks_the_readable_candidates_by_the_aggregation():
    candidates = [UNREADABLE, LOW, GIVEN_UP, HIGH]
    assert best_of_n(candidates, "last", answer_of) is HIGH  # 0.5 > 0.25
    assert best_of_n(candidates, "min", answer_of) is LOW  # 0.25 = 0.25: the earlier
    assert best_of_n(candidates, "mean", answer_of) is LOW  # 0.375 each: the earlier
    assert best_of_n(candidates, "last") is UNREADABLE
    assert best_of_n(candidates, "min") is UNREADABLE


def test_best_of_n_with_no_readable_candidate_takes_the_highest_scored_one():
    assert best_of_n([GIVEN_UP, UNREADABLE], "last", answer_of) is UNREADABLE
    assert best_of_n([UNREADABLE, GIVEN_UP], "mean", answer_of) is UNREADABLE
    assert best_of_n([GIVEN_UP], "min", answer_of) is GIVEN_UP
    assert best_of_n([], "min", answer_of) is None
    assert best_of_n([], "min") is None


def test_with_answers_keeps_the_readable_candidates_in_order_or_all_when_none_is():
    candidates = [UNREADABLE, HIGH, GIVEN_UP, LOW]
    assert list(with_answers(candidates, answer_of)) == [HIGH, LOW]
    assert all(a is b for a, b in zip(with_answers(candidates, answer_of), [HIGH, LOW], strict=True))
    assert list(with_answers([UNREADABLE, GIVEN_UP], answer_of)) == [UNREADABLE, GIVEN_UP]
    assert with_answers(candidates, None) is candidates  # no reader: unchanged
    assert list(with_answers([], answer_of)) == []


# The methods that choose with them ---------------------------------------------------------------


def step(text, num_tokens=1):
    return ProposedStep(text, num_tokens, is_final=text.startswith("="))


def scripted_propose(first_steps):
    """Every proposal is the next of `first_steps`, cycling across calls and prefixes (sampling asks for one
    step per prefix, beam and ToT for several); every one is final."""
    proposed = 0

    def propose(prefixes, num_samples):
        nonlocal proposed
        batch = []
        for _ in prefixes:
            batch.append([step(first_steps[(proposed + i) % len(first_steps)]) for i in range(num_samples)])
            proposed += num_samples
        return batch

    return propose


def table_score(table):
    return lambda prefixes: [table[prefix.steps] for prefix in prefixes]


# "=?" ends a solution without an answer and scores highest; "=1" ends one with an answer.
SCORES = {("=?",): 0.875, ("=1",): 0.5, ("=!",): 0.25}


def test_sampling_methods_best_of_n_answers_with_a_readable_solution():
    results = sampling_methods([("p0", "Q\n")], scripted_propose(["=?", "=1"]), table_score(SCORES), answer_of,
                               num_samples=2, max_depth=3)
    for how in ("min", "prod", "last", "mean"):
        assert results[f"best_of_n_{how}"][0].chosen == ("=1",), how
        assert results[f"best_of_n_{how}"][0].answer == "1", how


@pytest.mark.parametrize("search", ["beam", "tot"])
def test_beam_and_tot_answer_with_the_best_readable_finished_solution(search):
    params = LevelSearchParams(width=2, branch=2, max_depth=3)
    method = beam_search if search == "beam" else tot_bfs
    [result] = method([("p0", "Q\n")], scripted_propose(["=?", "=1"]), table_score(SCORES), answer_of, params)
    assert sorted(candidate.steps for candidate in result.finished) == [("=1",), ("=?",)]  # both finished
    assert result.chosen == ("=1",) and result.answer == "1"  # though "=?" scored 0.875 > 0.5


@pytest.mark.parametrize("search", ["beam", "tot"])
def test_beam_and_tot_with_no_readable_solution_take_the_best_scored_one(search):
    params = LevelSearchParams(width=2, branch=2, max_depth=3)
    method = beam_search if search == "beam" else tot_bfs
    [result] = method([("p0", "Q\n")], scripted_propose(["=!", "=?"]), table_score(SCORES), answer_of, params)
    assert result.chosen == ("=?",) and result.answer is None
