"""Best-of-N and the weighted vote read by any verifier, with the verifier's generated tokens counted."""

from __future__ import annotations

import pytest

from search.baselines import Candidate, best_verified, sampling_methods, verify_solutions
from search.types import Prefix, ProposedStep, VerifierScores, checked_verify


def answer_of(steps):
    return steps[-1].strip() if steps and steps[-1].strip().isdigit() else None


def fixed_propose(texts_by_prompt):
    """Each prompt's samples, one finished step each, in a fixed order (cycled)."""
    counters = {prompt: 0 for prompt in texts_by_prompt}

    def propose(prefixes, num_samples):
        out = []
        for prefix in prefixes:
            texts = texts_by_prompt[prefix.prompt]
            text = texts[counters[prefix.prompt] % len(texts)]
            counters[prefix.prompt] += 1
            out.append([ProposedStep(text, 2, True) for _ in range(num_samples)])
        return out

    return propose


def verifier_from(table, tokens_each=5):
    """Scores each solution by its last step's text (table lookup); generates `tokens_each` tokens per solution."""
    calls = []

    def verify(prefixes):
        calls.append(list(prefixes))
        return VerifierScores([table[p.steps[-1]] for p in prefixes], [tokens_each] * len(prefixes),
                              [len(p.prompt) for p in prefixes])

    verify.calls = calls
    return verify


def test_best_of_n_by_a_verifier_picks_its_highest_scored_readable_solution():
    propose = fixed_propose({"p\n": ["3\n", "x\n", "4\n", "3\n"]})
    verify = verifier_from({"3\n": 0.2, "x\n": 0.99, "4\n": 0.7})
    results = sampling_methods([("a", "p\n")], propose, None, answer_of, 4, 3, verifiers={"v": verify})
    best = results["best_of_n_v"][0]
    assert best.answer == "4"  # "x" scores higher but has no readable answer
    assert results["self_consistency"][0].answer == "3"


def test_weighted_vote_by_a_verifier_sums_its_scores_per_answer():
    propose = fixed_propose({"p\n": ["3\n", "3\n", "4\n"]})
    verify = verifier_from({"3\n": 0.2, "4\n": 0.5})
    results = sampling_methods([("a", "p\n")], propose, None, answer_of, 3, 3, verifiers={"v": verify})
    assert results["weighted_vote_v"][0].answer == "4"  # 0.5 > 0.2 + 0.2


def test_verifier_tokens_are_added_to_the_sampling_tokens_per_problem():
    propose = fixed_propose({"p\n": ["3\n"], "q\n": ["4\n"]})
    verify = verifier_from({"3\n": 0.5, "4\n": 0.5}, tokens_each=7)
    results = sampling_methods([("a", "p\n"), ("b", "q\n")], propose, None, answer_of, 3, 3,
                               verifiers={"v": verify})
    sampled = [r.tokens_used for r in results["self_consistency"]]
    assert sampled == [6, 6]
    assert [r.tokens_used for r in results["best_of_n_v"]] == [6 + 21, 6 + 21]
    assert [r.tokens_used for r in results["weighted_vote_v"]] == [27, 27]
    assert len(verify.calls) == 1  # every problem's solutions in one call


def test_verify_solutions_stores_scores_under_the_verifier_name_and_counts_tokens_per_problem():
    first = [Candidate(("1\n",), finished=True), Candidate(("2\n",), finished=True)]
    second = [Candidate(("3\n",), finished=True)]
    verify = verifier_from({"1\n": 0.1, "2\n": 0.2, "3\n": 0.3}, tokens_each=4)
    tokens = verify_solutions([("p\n", first), ("q\n", second)], verify, "v")
    assert tokens == [8, 4]
    assert [c.verifier_scores["v"] for c in first + second] == [0.1, 0.2, 0.3]
    assert verify.calls[0] == [Prefix("p\n", ("1\n",)), Prefix("p\n", ("2\n",)), Prefix("q\n", ("3\n",))]


def test_best_verified_breaks_ties_towards_the_earliest_and_falls_back_when_nothing_is_readable():
    tied = [Candidate(("5\n",), verifier_scores={"v": 0.5}), Candidate(("6\n",), verifier_scores={"v": 0.5})]
    assert best_verified(tied, "v", answer_of).steps == ("5\n",)
    unreadable = [Candidate(("x\n",), verifier_scores={"v": 0.1}), Candidate(("y\n",), verifier_scores={"v": 0.9})]
    assert best_verified(unreadable, "v", answer_of).steps == ("y\n",)
    assert best_verified([], "v", answer_of) is None


def test_a_verifier_that_returns_the_wrong_number_of_scores_is_refused():
    with pytest.raises(ValueError, match="one score and one token count"):
        VerifierScores([0.5], [1, 2], [3])

    def short(prefixes):
        return VerifierScores([0.5], [0], [0])

    with pytest.raises(ValueError, match="1 scores for 2 solutions"):
        checked_verify(short, [Prefix("p", ("1",)), Prefix("p", ("2",))])


def test_beam_search_with_a_verifier_ranks_beams_by_it_and_charges_its_tokens():
    from search.level_search import LevelSearchParams, beam_search

    def two_step_propose(prefixes, num_samples):
        out = []
        for prefix in prefixes:
            final = bool(prefix.steps)
            texts = ["3\n", "4\n"] if final else ["a\n", "b\n"]
            out.append([ProposedStep(texts[i % 2], 2, final) for i in range(num_samples)])
        return out

    verify = verifier_from({"a\n": 0.5, "b\n": 0.5, "3\n": 0.1, "4\n": 0.9}, tokens_each=3)
    params = LevelSearchParams(width=2, branch=2, max_depth=3)
    [with_verifier] = beam_search([("p", "q\n")], two_step_propose, lambda ps: [0.5] * len(ps), answer_of, params,
                                  verify)
    [plain] = beam_search([("p", "q\n")], two_step_propose, lambda ps: [0.5] * len(ps), answer_of, params)
    assert with_verifier.answer == "4" and plain.answer == "3"  # the PRM ties: the first beam wins
    assert with_verifier.tokens_used == plain.tokens_used + 3 * len(verify.calls[0] + verify.calls[1])
