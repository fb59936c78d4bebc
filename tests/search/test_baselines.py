"""Baselines on deterministic fakes: hand-checked answers and token counts, budgets, deterministic ties."""

import hashlib

import pytest

from search.baselines import (
    Candidate,
    aggregate,
    best_of_n,
    greedy_solutions,
    majority_vote,
    sample_solutions,
    sampling_methods,
    unbatched_propose,
    unbatched_score,
    weighted_vote,
)
from search.level_search import LevelSearchParams, beam_search, tot_bfs
from search.mcts import MCTSParams, run_mcts
from search.types import Prefix, ProposedStep


def step(text, num_tokens=1):
    return ProposedStep(text, num_tokens, is_final=text.startswith("="))


class ScriptedPolicy:
    """Each prefix (its steps) answers with the next entry of its script, cycling; counts its calls."""

    def __init__(self, script):
        self.script = script
        self.position = {}
        self.calls = 0

    def next_step(self, prefix):
        options = self.script[prefix.steps]
        index = self.position.get(prefix.steps, 0)
        self.position[prefix.steps] = index + 1
        return options[index % len(options)]

    def propose(self, prefixes, num_samples):
        self.calls += 1
        return [[self.next_step(prefix) for _ in range(num_samples)] for prefix in prefixes]

    def greedy(self, prefixes):
        self.calls += 1
        return [self.script[prefix.steps][0] for prefix in prefixes]


def table_score(table):
    def score(prefixes):
        return [table[prefix.steps] for prefix in prefixes]

    return score


def answer_of(steps):
    return steps[-1][1:].strip() if steps and steps[-1].startswith("=") else None


# Two first steps, each leading to one final answer: "a" -> "=1", "b" -> "=2".
SCRIPT = {
    (): [step("a\n", 1), step("b\n", 2), step("a\n", 1)],
    ("a\n",): [step("=1", 1)],
    ("b\n",): [step("=2", 1)],
}
# Exact binary fractions, so ties are exact.
SCORES = {("a\n",): 0.75, ("a\n", "=1"): 0.25, ("b\n",): 0.5, ("b\n", "=2"): 0.5}


def test_three_samples_give_hand_checked_solutions_and_tokens():
    policy = ScriptedPolicy(SCRIPT)
    [(finished, tokens)] = sample_solutions(["Q\n"], policy.propose, num_samples=3, max_depth=4)
    assert [candidate.steps for candidate in finished] == [("a\n", "=1"), ("b\n", "=2"), ("a\n", "=1")]
    assert tokens == (1 + 2 + 1) + (1 + 1 + 1)
    assert policy.calls == 2  # one batched call per level


def test_completions_continue_from_their_start_and_count_only_the_new_steps():
    policy = ScriptedPolicy(SCRIPT)
    results = sample_solutions(["Q\n", "Q\n", "Q\n"], policy.propose, num_samples=2, max_depth=2,
                               starts=[("a\n",), ("b\n",), ("a\n", "c\n")])
    assert [[c.steps for c in finished] for finished, _ in results] == [
        [("a\n", "=1")] * 2, [("b\n", "=2")] * 2, []]  # the third start is at max_depth already: nothing to add
    assert [tokens for _, tokens in results] == [2, 2, 0]
    assert policy.calls == 1
    with pytest.raises(ValueError, match="2 starts for 1 prompts"):
        sample_solutions(["Q\n"], policy.propose, 1, 2, starts=[(), ()])


def test_sampling_methods_pick_hand_checked_answers():
    results = sampling_methods(
        [("p0", "Q\n")], ScriptedPolicy(SCRIPT).propose, table_score(SCORES), answer_of, num_samples=3, max_depth=4
    )
    # Solutions a (0.75, 0.25) twice and b (0.5, 0.5) once.
    assert results["self_consistency"][0].answer == "1"
    assert results["best_of_n_min"][0].answer == "2"  # 0.5 > 0.25
    assert results["best_of_n_prod"][0].answer == "2"  # 0.25 > 0.1875
    assert results["best_of_n_last"][0].answer == "2"  # 0.5 > 0.25
    assert results["best_of_n_mean"][0].answer == "1"  # 0.5 = 0.5: the earliest solution wins
    # Weighted vote by min: "1" gets 0.25 + 0.25, "2" gets 0.5; the tie goes to the smaller answer.
    assert results["weighted_vote"][0].answer == "1"
    assert all(result[0].tokens_used == 7 for result in results.values())
    assert results["best_of_n_min"][0].chosen == ("b\n", "=2")


def test_sampling_without_a_prm_gives_only_self_consistency():
    results = sampling_methods([("p0", "Q\n")], ScriptedPolicy(SCRIPT).propose, None, answer_of, 3, 4)
    assert list(results) == ["self_consistency"]


def test_votes_break_ties_deterministically():
    assert majority_vote(["2", "1", "2", "1", None]) == "1"
    assert majority_vote([None, None]) is None
    assert weighted_vote(["b", "a"], [0.5, 0.5]) == "a"
    assert weighted_vote(["b", "a", "a"], [0.9, 0.5, 0.3]) == "b"


def test_aggregations_and_best_of_n_ties():
    assert aggregate([0.5, 0.25, 1.0], "min") == 0.25
    assert aggregate([0.5, 0.25, 1.0], "prod") == 0.125
    assert aggregate([0.5, 0.25, 1.0], "last") == 1.0
    assert aggregate([0.5, 0.25, 0.75], "mean") == 0.5
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate([0.5], "max")
    first, second = Candidate(("x",), (0.5,), True), Candidate(("y",), (0.5,), True)
    assert best_of_n([first, second], "last") is first


def test_solutions_that_never_finish_give_no_answer():
    looping = {(): [step("a\n")], ("a\n",): [step("a\n")], ("a\n", "a\n"): [step("a\n")]}
    [(finished, tokens)] = sample_solutions(["Q\n"], ScriptedPolicy(looping).propose, 2, max_depth=3)
    assert finished == [] and tokens == 6


def test_greedy_follows_the_first_option_and_counts_tokens():
    [result] = greedy_solutions([("p0", "Q\n")], ScriptedPolicy(SCRIPT).greedy, answer_of, max_depth=4)
    assert result.chosen == ("a\n", "=1") and result.answer == "1" and result.tokens_used == 2


# A tree for the level-wise searches: two good and one bad first step; only "b" leads to "=2".
LEVEL_SCRIPT = {
    (): [step("a\n", 2), step("b\n", 2), step("c\n", 2), step("a\n", 2)],
    ("a\n",): [step("=1", 3), step("x\n", 1)],
    ("b\n",): [step("=2", 3), step("y\n", 1)],
    ("c\n",): [step("=3", 3)],
    ("a\n", "x\n"): [step("=4", 1)],
    ("b\n", "y\n"): [step("=5", 1)],
}
LEVEL_SCORES = {
    ("a\n",): 0.75, ("b\n",): 0.5, ("c\n",): 0.25,
    ("a\n", "=1"): 0.25, ("a\n", "x\n"): 0.5, ("b\n", "=2"): 0.875, ("b\n", "y\n"): 0.125, ("c\n", "=3"): 0.0,
    ("a\n", "x\n", "=4"): 0.5, ("b\n", "y\n", "=5"): 1.0,
}


def test_beam_search_keeps_n_over_m_beams_and_picks_the_best_finished_one():
    policy = ScriptedPolicy(LEVEL_SCRIPT)
    [result] = beam_search(
        [("p0", "Q\n")], policy.propose, table_score(LEVEL_SCORES), answer_of,
        LevelSearchParams(width=4, branch=2, max_depth=5),
    )
    # Level 1: a, b, c, a (8 tokens); keep the best 4 // 2 = 2: a (0.75) and the second a (0.75).
    # Level 2: each a expands into "=1" and "x" (3 + 1 tokens each): two finished "=1", open x, x;
    # keep x, x. Level 3: each x expands into "=4" twice (4 tokens): four finished, so it ends.
    assert result.tokens_used == 8 + 8 + 4
    assert [candidate.steps[-1] for candidate in result.finished] == ["=1", "=1", "=4", "=4", "=4", "=4"]
    assert result.answer == "4"  # last-step score 0.5 > 0.25


def test_tot_bfs_keeps_the_best_states_finished_or_not():
    policy = ScriptedPolicy(LEVEL_SCRIPT)
    [result] = tot_bfs(
        [("p0", "Q\n")], policy.propose, table_score(LEVEL_SCORES), answer_of,
        LevelSearchParams(width=2, branch=3, max_depth=5),
    )
    # Level 1: the root proposes a, b, c (6 tokens): keep a (0.75), b (0.5).
    # Level 2: a proposes =1, x, =1 (dropped as a duplicate); b proposes =2, y, =2: 4 + 3 + 4 + 3 = 14 tokens.
    # Values: =1 0.25, x 0.5, =2 0.875, y 0.125: keep =2 (finished) and x. Level 3: x proposes =4 three
    # times (3 tokens, two dropped as duplicates): keep =4 (0.5). Best finished: =2.
    assert result.tokens_used == 6 + 14 + 3
    assert result.answer == "2"
    assert [candidate.steps[-1] for candidate in result.finished] == ["=2", "=4"]


def _digest(*parts):
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16)


MAX_STEP_TOKENS = 5


def hash_proposer(vary_by_call: bool = True):
    """A deterministic fake policy: steps hashed from the prefix and sample index (and, with `vary_by_call`,
    from how many calls came before, so that repeated prefixes get new samples). Each proposer counts its
    own calls."""
    calls = 0

    def propose(prefixes, num_samples):
        nonlocal calls
        calls += 1
        out = []
        for prefix in prefixes:
            row = []
            for sample in range(num_samples):
                value = _digest(prefix.prompt, *prefix.steps, str(sample), *([str(calls)] if vary_by_call else []))
                final = len(prefix.steps) >= 2 and value % 3 == 0
                text = f"={value % 4}" if final else f"s{value % 5}\n"
                row.append(ProposedStep(text, 1 + value % MAX_STEP_TOKENS, final))
            out.append(row)
        return out

    return propose


def hash_score(prefixes):
    return [(_digest("score", prefix.prompt, *prefix.steps) % 1000) / 1000 for prefix in prefixes]


PROMPTS = [(f"p{i}", f"Q{i}\n") for i in range(6)]


@pytest.mark.parametrize("budget", [10, 25, 60])
def test_no_method_exceeds_its_budget_by_more_than_one_expansion(budget):
    n, width, branch = 4, 4, 2
    hash_propose = hash_proposer()
    sampled = sampling_methods(PROMPTS, hash_propose, hash_score, answer_of, n, max_depth=6, max_tokens=budget)
    for result in sampled["self_consistency"]:
        assert result.tokens_used <= budget + n * MAX_STEP_TOKENS
    for result in beam_search(PROMPTS, hash_propose, hash_score, answer_of,
                              LevelSearchParams(width, branch, max_depth=6, max_tokens=budget)):
        assert result.tokens_used <= budget + width * MAX_STEP_TOKENS
    for result in tot_bfs(PROMPTS, hash_propose, hash_score, answer_of,
                          LevelSearchParams(width, branch, max_depth=6, max_tokens=budget)):
        assert result.tokens_used <= budget + width * branch * MAX_STEP_TOKENS
    params = MCTSParams(branch=3, max_simulations=1000, max_tokens=budget, max_depth=6, end_gate=2.0)
    for tree in run_mcts(PROMPTS, hash_propose, hash_score, params):
        assert tree.tokens_used <= budget + params.branch * MAX_STEP_TOKENS


def test_a_budget_that_binds_stops_the_search_early():
    unlimited = sampling_methods(PROMPTS, hash_proposer(), None, answer_of, 8, max_depth=6)
    capped = sampling_methods(PROMPTS, hash_proposer(), None, answer_of, 8, max_depth=6, max_tokens=20)
    unlimited, capped = unlimited["self_consistency"], capped["self_consistency"]
    assert sum(r.tokens_used for r in capped) < sum(r.tokens_used for r in unlimited)


def test_batched_problems_give_the_same_results_as_each_alone():
    params = LevelSearchParams(width=3, branch=2, max_depth=5)
    propose = hash_proposer(vary_by_call=False)  # the same prefix always gives the same steps
    together = tot_bfs(PROMPTS, propose, hash_score, answer_of, params)
    alone = [tot_bfs([prompt], propose, hash_score, answer_of, params)[0] for prompt in PROMPTS]
    assert [(r.chosen, r.tokens_used) for r in together] == [(r.chosen, r.tokens_used) for r in alone]


def test_unbatched_wrappers_make_one_call_per_sample_and_prefix():
    policy = ScriptedPolicy(SCRIPT)
    steps = unbatched_propose(policy.propose)([Prefix("Q\n"), Prefix("Q\n", ("a\n",))], 3)
    assert policy.calls == 6
    assert [s.text for s in steps[0]] == ["a\n", "b\n", "a\n"] and [s.text for s in steps[1]] == ["=1"] * 3
    calls = []

    def score(prefixes):
        calls.append(len(prefixes))
        return [0.5] * len(prefixes)

    assert unbatched_score(score)([Prefix("Q\n", ("a\n",))] * 4) == [0.5] * 4
    assert calls == [1, 1, 1, 1]
