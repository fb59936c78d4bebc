"""Methods compared at equal token budgets: accuracy per method and budget with bootstrap intervals over problems
and seeds, and MCTS* (or a verifier's method) against each other method with paired intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rest_mcts.methods import METHODS, MethodRecord


def bootstrap_interval(correct_by_seed: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of accuracy over problems; `correct_by_seed` is [seeds, problems].

    Problems are resampled (each resample keeps a problem's outcomes on every seed), so the interval
    covers variation over problems and seeds.
    """
    per_problem = correct_by_seed.mean(axis=0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_problem), size=(resamples, len(per_problem)))
    means = per_problem[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class SummaryRow:
    split: str
    method: str
    budget: int
    seeds: int
    problems: int
    accuracy: float
    ci_low: float
    ci_high: float
    tokens_per_problem: float
    seconds_per_problem: float


def summarize(records: Sequence[MethodRecord]) -> list[SummaryRow]:
    """Accuracy (with a bootstrap interval), mean tokens and seconds per (split, method, budget)."""
    groups: dict[tuple[str, str, int], list[MethodRecord]] = {}
    for record in records:
        groups.setdefault((record.split, record.method, record.budget), []).append(record)
    rows = []
    for (split, method, budget), group in sorted(groups.items(), key=lambda item: (
            item[0][0], METHODS.index(item[0][1]) if item[0][1] in METHODS else len(METHODS), item[0][1], item[0][2])):
        seeds = sorted({record.seed for record in group})
        problem_ids = sorted({record.problem_id for record in group})
        outcome = {(record.seed, record.problem_id): record.correct for record in group}
        if len(outcome) != len(seeds) * len(problem_ids):
            raise ValueError(f"{split}/{method}/{budget}: not every seed covers every problem")
        matrix = np.array([[outcome[(seed, pid)] for pid in problem_ids] for seed in seeds], dtype=float)
        low, high = bootstrap_interval(matrix)
        rows.append(SummaryRow(split, method, budget, len(seeds), len(problem_ids), float(matrix.mean()), low, high,
                               float(np.mean([record.tokens for record in group])),
                               float(np.mean([record.seconds for record in group]))))
    return rows


@dataclass(frozen=True)
class Comparison:
    """MCTS* against the most accurate other method at one budget that spent no more tokens per problem than
    MCTS* did or the budget allows, whichever is larger, within 10% (pass@N, an oracle, excluded; greedy
    included). Methods sized by the budget can overshoot it (ToT-BFS spends at least k solutions' worth); they
    join the comparison at the budgets where their spending matches."""

    split: str
    budget: int
    method: str
    """The most accurate other method at this budget."""
    mcts_accuracy: float
    other_accuracy: float
    difference: float
    """MCTS*'s accuracy minus the other's."""
    ci_low: float
    ci_high: float
    """95% paired bootstrap interval of the difference (problems resampled, each with its outcomes on every seed
    under both methods)."""
    subject: str = "mcts"
    """The MCTS* variant compared (mcts, mcts_leaf_verifier, mcts_step_verifier)."""


def paired_interval(mine: np.ndarray, theirs: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(mine) - mean(theirs); both are [seeds, problems] in the same order:
    `bootstrap_interval` of the per-outcome differences, so each resampled problem keeps both methods' outcomes."""
    return bootstrap_interval(mine - theirs, resamples, seed)


def compare_mcts(records: Sequence[MethodRecord], method: str = "mcts",
                 tolerance: float = 0.1, against: Sequence[str] | None = None) -> list[Comparison]:
    """Per split and budget where `method` ran: its accuracy difference to the best other method (among `against`
    if given) that spent at most (1 + tolerance) times max(budget, `method`'s mean tokens) per problem, paired over
    problems."""
    outcome: dict[tuple[str, str, int], dict[tuple[int, str], bool]] = {}
    spent: dict[tuple[str, str, int], list[int]] = {}
    for record in records:
        spent.setdefault((record.split, record.method, record.budget), []).append(record.tokens)
        outcome.setdefault((record.split, record.method, record.budget), {})[(record.seed, record.problem_id)] = (
            record.correct)

    def matrix(key, seeds, problem_ids) -> np.ndarray:
        table = outcome[key]
        # greedy is deterministic and runs once: its outcome stands for every seed
        return np.array([[table.get((seed, pid), table.get((next(iter(table))[0], pid), False))
                          for pid in problem_ids] for seed in seeds], dtype=float)

    comparisons = []
    for (split, name, budget), table in sorted(outcome.items()):
        if name != method:
            continue
        seeds = sorted({seed for seed, _ in table})
        problem_ids = sorted({pid for _, pid in table})
        mine = matrix((split, name, budget), seeds, problem_ids)
        allowance = (1 + tolerance) * max(budget, float(np.mean(spent[(split, name, budget)])))
        others = [key for key in outcome if key[0] == split and key[1] not in (method, "pass_at_n")
                  and (against is None or key[1] in against)
                  and (key[2] == budget or key[1] == "greedy") and float(np.mean(spent[key])) <= allowance]
        if not others:
            continue
        scored = [(matrix(key, seeds, problem_ids), key[1]) for key in others]
        theirs, other = max(scored, key=lambda item: item[0].mean())
        low, high = paired_interval(mine, theirs)
        comparisons.append(Comparison(split, budget, other, float(mine.mean()), float(theirs.mean()),
                                      float(mine.mean() - theirs.mean()), low, high, method))
    return comparisons


def verifier_comparisons(records: Sequence[MethodRecord]) -> list[Comparison]:
    """Each MCTS* variant with a verifier that ran: against MCTS* with the PRM only, and against the best other
    method, at each budget (`compare_mcts`)."""
    present = {record.method for record in records}
    comparisons: list[Comparison] = []
    for variant in ("mcts_leaf_verifier", "mcts_step_verifier"):
        if variant in present:
            if "mcts" in present:
                comparisons += compare_mcts(records, variant, against=["mcts"])
            comparisons += compare_mcts(records, variant)
    return comparisons
