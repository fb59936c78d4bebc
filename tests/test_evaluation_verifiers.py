"""The evaluation's verifier methods: Best-of-N and the weighted vote by a verifier, MCTS* with a leaf or a step
verifier, their tokens, and the comparison of the verifier's MCTS* with the PRM's."""

from __future__ import annotations

import pytest

from lm.data import Problem
from rest_mcts.comparison import verifier_comparisons
from rest_mcts.methods import BudgetPlan, MethodCall, MethodRecord, run_call
from search.mcts import MCTSParams
from search.types import ProposedStep, VerifierScores


class FinalWordTask:
    """A solution is two steps; the second ('right' or 'wrong') is final and is the answer."""

    @staticmethod
    def format_prompt(problem):
        return problem.question + "\n"

    @staticmethod
    def extract_answer(steps):
        return steps[-1].strip() if steps and steps[-1].strip() in ("right", "wrong") else None

    @staticmethod
    def check_answer(answer, oracle):
        return answer == oracle


def candidates(prefix, count, offset=0):
    """The first candidate is always the wrong one, so following proposal order answers wrong."""
    if not prefix.steps:
        return [ProposedStep("abc"[(offset + i) % 3] + "\n", 2, False) for i in range(count)]
    return [ProposedStep(("wrong\n", "right\n")[(offset + i) % 2], 3, True) for i in range(count)]


def propose(prefixes, num_samples):
    """Samples one at a time cycle through the candidates, so N samples hold both answers."""
    propose.calls = getattr(propose, "calls", 0) + 1
    return [candidates(prefix, num_samples, propose.calls + index if num_samples == 1 else 0)
            for index, prefix in enumerate(prefixes)]


def greedy(prefixes):
    return [candidates(prefix, 1)[0] for prefix in prefixes]


def prm(prefixes):
    return [0.5] * len(prefixes)


def verify(prefixes):
    scores = [0.99 if p.steps and p.steps[-1] == "right\n" else 0.01 for p in prefixes]
    return VerifierScores(scores, [5] * len(prefixes), [1] * len(prefixes))


PROBLEMS = [Problem(f"p{i}", f"q{i}", "right") for i in range(3)]


def call(group, budget=400, samples=4):
    return MethodCall(group, "test", 0, BudgetPlan(budget, samples, samples, 1),
                      MCTSParams(branch=2, max_simulations=12, end_gate=0.9), max_depth=4)


def by_method(records):
    out = {}
    for record in records:
        out.setdefault(record.method, []).append(record)
    return out


def test_best_of_n_by_the_verifier_finds_the_right_answer_and_pays_its_tokens():
    records = by_method(run_call(call("sampling"), FinalWordTask(), PROBLEMS, propose, greedy, prm, verify))
    assert all(r.correct for r in records["best_of_n_verifier"])
    assert all(r.correct for r in records["weighted_vote_verifier"])
    sampled = [r.tokens for r in records["self_consistency"]]
    assert [r.tokens for r in records["best_of_n_verifier"]] == [t + 5 * 4 for t in sampled]


def test_without_a_verifier_the_sampling_group_has_no_verifier_methods():
    records = by_method(run_call(call("sampling"), FinalWordTask(), PROBLEMS, propose, greedy, prm))
    assert "best_of_n_verifier" not in records and "self_consistency" in records


def test_mcts_with_a_leaf_verifier_answers_right_where_the_prm_cannot_tell():
    task = FinalWordTask()
    plain = by_method(run_call(call("mcts"), task, PROBLEMS, propose, greedy, prm))["mcts"]
    leaf = by_method(run_call(call("mcts_leaf_verifier"), task, PROBLEMS, propose, greedy, prm,
                              verify))["mcts_leaf_verifier"]
    assert not any(r.correct for r in plain)  # ties go to the first (wrong) candidate
    assert all(r.correct for r in leaf)
    assert all(r.tokens > 0 for r in leaf)


def test_mcts_with_a_step_verifier_charges_its_tokens_for_every_node():
    task = FinalWordTask()
    leaf = by_method(run_call(call("mcts_leaf_verifier"), task, PROBLEMS, propose, greedy, prm,
                              verify))["mcts_leaf_verifier"]
    step = by_method(run_call(call("mcts_step_verifier"), task, PROBLEMS, propose, greedy, prm,
                              verify))["mcts_step_verifier"]
    assert all(r.correct for r in step)
    assert sum(r.tokens for r in step) > sum(r.tokens for r in leaf)


def test_a_verifier_method_without_a_verifier_is_refused():
    with pytest.raises(ValueError, match="needs a verifier"):
        run_call(call("mcts_step_verifier"), FinalWordTask(), PROBLEMS, propose, greedy, prm)


def test_verifier_comparisons_pit_each_variant_against_the_prms_mcts_and_the_best_other():
    records = []
    for index in range(10):
        pid = f"p{index}"
        records += [MethodRecord("test", "mcts", 100, 0, pid, index < 3, 100, 0.1),
                    MethodRecord("test", "mcts_leaf_verifier", 100, 0, pid, index < 7, 105, 0.1),
                    MethodRecord("test", "self_consistency", 100, 0, pid, index < 5, 100, 0.1)]
    comparisons = verifier_comparisons(records)
    assert [(c.subject, c.method) for c in comparisons] == [("mcts_leaf_verifier", "mcts"),
                                                           ("mcts_leaf_verifier", "self_consistency")]
    assert comparisons[0].difference == pytest.approx(0.4)
    assert comparisons[1].difference == pytest.approx(0.2)


def test_beam_search_with_the_verifier_scoring_beams_answers_right_and_pays_its_tokens():
    task = FinalWordTask()
    plain = by_method(run_call(call("beam_search"), task, PROBLEMS, propose, greedy, prm))["beam_search"]
    verified = by_method(run_call(call("beam_search_verifier"), task, PROBLEMS, propose, greedy, prm,
                                  verify))["beam_search_verifier"]
    assert all(r.correct for r in verified)
    assert sum(r.tokens for r in verified) > sum(r.tokens for r in plain)
    with pytest.raises(ValueError, match="needs a verifier"):
        run_call(call("beam_search_verifier"), task, PROBLEMS, propose, greedy, prm)
