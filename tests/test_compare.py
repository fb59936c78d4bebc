"""MCTS* against the best other method at each budget (`paired_interval`, `compare_mcts`), and the evaluation's
budgets as multiples of L (`split_budgets`, `--budget-multiples`)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from rest_mcts.comparison import Comparison, compare_mcts, paired_interval
from rest_mcts.config import ConfigError
from rest_mcts.evaluate import build_parser, resolve, split_budgets
from rest_mcts.methods import MethodRecord

PROBLEMS = ("a", "b", "c", "d")


def rows(method: str, budget: int, outcomes: dict[int, str], split: str = "test") -> list[MethodRecord]:
    """Records of one method at one budget: per seed, a string of 1/0 outcomes over PROBLEMS."""
    return [MethodRecord(split, method, budget, seed, pid, flag == "1", 10, 0.1)
            for seed, flags in outcomes.items() for pid, flag in zip(PROBLEMS, flags)]


# paired_interval.


def test_paired_interval_of_identical_outcomes_is_zero():
    outcomes = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], dtype=float)
    assert paired_interval(outcomes, outcomes.copy()) == (0.0, 0.0)


def test_paired_interval_of_always_right_against_always_wrong_is_one():
    assert paired_interval(np.ones((2, 6)), np.zeros((2, 6))) == (1.0, 1.0)
    assert paired_interval(np.zeros((1, 6)), np.ones((1, 6))) == (-1.0, -1.0)


def test_paired_interval_pairs_the_outcomes_by_problem():
    # Problems differ widely in difficulty, but on each one the first method is right on one seed more: every
    # per-problem difference is 1/2, so the paired interval is exactly 1/2 (an unpaired one would be wide).
    theirs = np.array([[0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=float)
    mine = np.array([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 1, 0]], dtype=float)
    assert paired_interval(mine, theirs) == (0.5, 0.5)
    assert paired_interval(mine[:, ::-1], theirs) != (0.5, 0.5)


def test_paired_interval_brackets_the_difference_and_is_reproducible():
    rng = np.random.default_rng(7)
    mine = (rng.random((3, 40)) < 0.7).astype(float)
    theirs = (rng.random((3, 40)) < 0.5).astype(float)
    low, high = paired_interval(mine, theirs)
    assert -1 <= low < mine.mean() - theirs.mean() < high <= 1
    assert paired_interval(mine, theirs) == (low, high)
    assert paired_interval(mine, theirs, seed=1) != (low, high)
    narrow = paired_interval(np.tile(mine, 4), np.tile(theirs, 4))  # four times the problems
    assert narrow[1] - narrow[0] < high - low


# compare_mcts.


def test_mcts_is_compared_with_the_most_accurate_other_method_at_its_budget():
    records = (rows("mcts", 100, {0: "1110", 1: "1100"})
               + rows("self_consistency", 100, {0: "1000", 1: "1100"})
               + rows("beam_search", 100, {0: "0110", 1: "1010"})
               + rows("greedy", 0, {0: "1000"}))
    [comparison] = compare_mcts(records)
    assert isinstance(comparison, Comparison)
    assert (comparison.split, comparison.budget, comparison.method) == ("test", 100, "beam_search")
    assert comparison.mcts_accuracy == pytest.approx(5 / 8)
    assert comparison.other_accuracy == pytest.approx(4 / 8)
    assert comparison.difference == pytest.approx(1 / 8)
    assert comparison.ci_low <= comparison.difference <= comparison.ci_high


def test_the_interval_is_the_paired_interval_of_the_two_outcome_tables():
    records = rows("mcts", 100, {0: "1110", 1: "1100"}) + rows("tot_bfs", 100, {0: "0110", 1: "1000"})
    [comparison] = compare_mcts(records)
    mine = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=float)
    theirs = np.array([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=float)
    assert (comparison.ci_low, comparison.ci_high) == paired_interval(mine, theirs)
    assert comparison.difference == pytest.approx(mine.mean() - theirs.mean())


def test_pass_at_n_is_never_the_method_compared_with():
    records = (rows("mcts", 100, {0: "1100"}) + rows("pass_at_n", 100, {0: "1111"})
               + rows("best_of_n_min", 100, {0: "1000"}))
    [comparison] = compare_mcts(records)
    assert comparison.method == "best_of_n_min" and comparison.other_accuracy == pytest.approx(1 / 4)


def test_greedy_with_its_one_seed_stands_for_every_seed_of_mcts():
    # Greedy ran once (seed 0); MCTS* at seeds 3 and 4. Greedy's outcome counts on both seeds, and it beats the
    # sampling methods at this budget, so it is the method compared with.
    records = (rows("greedy", 0, {0: "1110"}) + rows("mcts", 200, {3: "1111", 4: "1101"})
               + rows("weighted_vote", 200, {3: "1000", 4: "0100"}))
    [comparison] = compare_mcts(records)
    assert comparison.method == "greedy"
    assert comparison.other_accuracy == pytest.approx(3 / 4)
    assert comparison.difference == pytest.approx(7 / 8 - 3 / 4)
    mine = np.array([[1, 1, 1, 1], [1, 1, 0, 1]], dtype=float)
    theirs = np.array([[1, 1, 1, 0], [1, 1, 1, 0]], dtype=float)
    assert (comparison.ci_low, comparison.ci_high) == paired_interval(mine, theirs)


def test_each_budget_is_compared_with_methods_at_that_budget_only():
    records = (rows("mcts", 100, {0: "1000"}) + rows("mcts", 200, {0: "1100"})
               + rows("self_consistency", 100, {0: "0000"}) + rows("self_consistency", 200, {0: "1110"})
               + rows("beam_search", 400, {0: "1111"}))  # a larger budget does not count at 100 or 200
    comparisons = compare_mcts(records)
    assert [(c.budget, c.method, c.other_accuracy) for c in comparisons] == [
        (100, "self_consistency", 0.0), (200, "self_consistency", 0.75)]
    assert [c.difference for c in comparisons] == pytest.approx([0.25, -0.25])


def test_splits_are_compared_separately():
    records = (rows("mcts", 100, {0: "1100"}, split="ood") + rows("mcts", 100, {0: "1100"}, split="test")
               + rows("beam_search", 100, {0: "1111"}, split="test")
               + rows("beam_search", 100, {0: "0000"}, split="ood")
               + rows("greedy", 0, {0: "0001"}, split="ood"))
    comparisons = compare_mcts(records)
    assert [(c.split, c.method, c.other_accuracy) for c in comparisons] == [
        ("ood", "greedy", 0.25), ("test", "beam_search", 1.0)]


def test_no_comparison_without_mcts_or_without_another_method():
    assert compare_mcts(rows("self_consistency", 100, {0: "1100"}) + rows("greedy", 0, {0: "1000"})) == []
    assert compare_mcts(rows("mcts", 100, {0: "1100"}) + rows("pass_at_n", 100, {0: "1111"})) == []
    assert compare_mcts(rows("mcts", 100, {0: "1100"}, split="test") + rows("greedy", 0, {0: "1"}, split="ood")) == []
    assert compare_mcts([]) == []


def test_another_method_can_be_the_one_compared():
    records = rows("mcts", 100, {0: "1100"}) + rows("beam_search", 100, {0: "1110"})
    [comparison] = compare_mcts(records, method="beam_search")
    assert comparison.method == "mcts" and comparison.mcts_accuracy == pytest.approx(3 / 4)


# Budgets as multiples of L.


def test_budgets_default_to_one_two_four_and_eight_times_l():
    args = build_parser().parse_args([])
    assert args.budgets is None and args.budget_multiples == [1.0, 2.0, 4.0, 8.0]
    assert split_budgets(args, 25.0) == [25, 50, 100, 200]
    assert split_budgets(args, 12.4) == [12, 25, 50, 99]


def test_budget_multiples_are_rounded_sorted_deduplicated_and_at_least_one_token():
    args = build_parser().parse_args(["--budget-multiples", "4", "0.5", "1", "1", "0.52"])
    assert split_budgets(args, 10.0) == [5, 10, 40]
    tiny = build_parser().parse_args(["--budget-multiples", "0.01", "0.02"])
    assert split_budgets(tiny, 10.0) == [1]


def test_given_budgets_are_used_as_they_are_on_every_split():
    args = build_parser().parse_args(["--budgets", "300", "100", "--budget-multiples", "2"])
    assert split_budgets(args, 10.0) == [300, 100]
    assert split_budgets(args, 55.5) == [300, 100]


@pytest.fixture
def no_model_loading(monkeypatch):
    """`resolve` imports its model loaders first (seconds of imports); these flag checks come before any loading,
    so loaders that refuse to run stand in for them."""

    def refuse(path):
        raise AssertionError(f"{path}: resolve loaded a model before checking its flags")

    stub = types.ModuleType("lm.build")
    stub.load_policy = stub.load_prm = refuse
    monkeypatch.setitem(sys.modules, "lm.build", stub)


def _resolve(*flags: str):
    return resolve(build_parser().parse_args(["--policy-model", "p", "--prm-model", "q", *flags]))


@pytest.mark.parametrize("multiples, shown", [(["1", "0", "-2"], "0 -2"), (["-0.5"], "-0.5"), (["0.0"], "0")])
def test_non_positive_budget_multiples_are_rejected_naming_the_flag(no_model_loading, multiples, shown):
    with pytest.raises(ConfigError, match=f"--budget-multiples {shown}: expected positive multiples of L"):
        _resolve("--budget-multiples", *multiples)


def test_positive_budget_multiples_pass_the_check(no_model_loading):
    # The next check (--problems) is the one that fails: the multiples were accepted.
    with pytest.raises(ConfigError, match="--problems -1"):
        _resolve("--budget-multiples", "0.5", "3", "--problems", "-1")


def test_a_budget_multiple_that_is_not_a_number_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--budget-multiples", "two"])
    assert exit_info.value.code == 2
    assert "--budget-multiples" in capsys.readouterr().err


def test_a_method_that_spent_more_tokens_than_mcts_and_the_budget_is_left_out():
    def spending(method: str, budget: int, correct: bool, tokens: int) -> list[MethodRecord]:
        return [MethodRecord("test", method, budget, 0, f"p{i}", correct, tokens, 0.0) for i in range(4)]

    records = (spending("mcts", 100, False, 90) + spending("tot_bfs", 100, True, 300)
               + spending("best_of_n_last", 100, False, 105))
    (only,) = compare_mcts(records)
    assert only.method == "best_of_n_last"  # ToT's 300 tokens are not the budget's 100
    assert compare_mcts(records, tolerance=3.0)[0].method == "tot_bfs"
