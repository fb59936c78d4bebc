"""Majority vote, Best-of-N and reward-weighted vote over N = 1, 2, 4, 8 real MATH responses, each graded two
ways: (a) by the project's math-verify grader (`rest_mcts.math_answers`) against the gold answer, and (b) by the
dataset's own correctness labels; prints one table row per N and method with both accuracies and the problems on
which (a) and (b) disagree, and writes the same as JSON with --out.

Input: JSONL in the format of Qwen2.5-Math's evaluation fixture (evaluation/data/eval_rm_maj_example/
math_cot_100.jsonl, shipped with its MIT license in rest_mcts/tasks/data/math/): per line `idx`, the gold answer `gt`,
and for each of at least 8 sampled responses its extracted answer `pred`, its correctness label `score` and its
reward-model score `pred_score` (a one-element list). Every line is checked; bad input stops the script with the
file, line and field, before anything is written.

Methods, on the first N responses; a vote groups equivalent answers (`rest_mcts.math_answers.equivalent`):
- pass@N: the unbiased estimator 1 - C(n-c, N) / C(n, N) over all n responses, c of them correct (Chen et al.,
  2021, "Evaluating large language models trained on code"), so pass@1 is the mean label and pass@n is "any".
- majority vote: `search.baselines.majority_vote`; label (b): that of the winning class's first response.
- Best-of-N: the response with the highest reward score, earliest on ties (`search.baselines.best_of_n`), as
  Qwen's rm@k takes the argmax of the raw score (evaluation/rm_maj_eval.py, eval_rm_k_metrics).
- weighted vote: `search.baselines.weighted_vote` with weight exp(reward score) per response. Qwen's
  rm_maj_eval.py has no weighted vote to follow (only maj@k by exact string and rm@k by argmax), and summing the
  raw scores would let negative scores (present here) count against an answer the more responses agree on it.
  exp keeps every weight positive and makes the vote the softmax-weighted one, unchanged by adding a constant to
  all scores, the one freedom a ranking-trained reward score has.

Usage: python experiments/math_best_of_n.py [--data FILE.jsonl] [--out RESULTS.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lm.data import atomic_write_text, read_jsonl_lines
from rest_mcts.math_answers import equivalent, same_answer
from search.baselines import Candidate, best_of_n, majority_vote, weighted_vote

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "rest_mcts" / "tasks" / "data" / "math" / "math_cot_100.jsonl"
SAMPLE_SIZES = (1, 2, 4, 8)
METHODS = ("pass@N", "majority_vote", "best_of_n", "weighted_vote")
WEIGHTS = "exp(pred_score)"


@dataclass(frozen=True)
class SampledProblem:
    """One problem's gold answer and its sampled responses, read from one line of the input."""

    problem_id: int
    gold: str
    answers: tuple[str | None, ...]
    """The extracted answer of each response (`pred`); None where it is empty."""
    labels: tuple[bool, ...]
    """The dataset's correctness label of each response (`score`)."""
    rewards: tuple[float, ...]
    """The reward-model score of each response (`pred_score`), unbounded, possibly negative."""


@dataclass(frozen=True)
class Row:
    """One method at one N: accuracy by the math-verify grader and by the labels, and where they disagree."""

    sample_size: int
    method: str
    math_verify: float
    labels: float
    disagreements: tuple[int, ...]
    """Ids of the problems whose outcome differs between the two gradings."""


class InputError(ValueError):
    """Bad input, with the file and line (and field) it was found at."""


# Reading and checking the input ------------------------------------------------------------------------------


def _field(record: dict, name: str, where: str):
    if name not in record:
        raise InputError(f"{where}: missing field '{name}'")
    return record[name]


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_line(record, where: str) -> SampledProblem:
    """One input record as a SampledProblem; InputError naming `where` and the field when it is malformed."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    problem_id, gold = _field(record, "idx", where), _field(record, "gt", where)
    if not isinstance(problem_id, int) or isinstance(problem_id, bool):
        raise InputError(f"{where}: field 'idx': expected an integer, got {problem_id!r}")
    if not isinstance(gold, str):
        raise InputError(f"{where}: field 'gt': expected a string, got {gold!r}")
    answers, labels, rewards = (_field(record, name, where) for name in ("pred", "score", "pred_score"))
    if not isinstance(answers, list) or len(answers) < max(SAMPLE_SIZES) or not all(
            isinstance(answer, str) for answer in answers):
        raise InputError(f"{where}: field 'pred': expected a list of at least {max(SAMPLE_SIZES)} strings")
    if not isinstance(labels, list) or len(labels) != len(answers) or not all(
            isinstance(label, bool) for label in labels):
        raise InputError(f"{where}: field 'score': expected a list of {len(answers)} booleans (one per 'pred')")
    if not isinstance(rewards, list) or len(rewards) != len(answers) or not all(
            isinstance(reward, list) and len(reward) == 1 and _number(reward[0]) for reward in rewards):
        raise InputError(f"{where}: field 'pred_score': expected a list of {len(answers)} one-number lists "
                         "(one per 'pred')")
    return SampledProblem(problem_id, gold, tuple(answer if answer.strip() else None for answer in answers),
                          tuple(labels), tuple(float(reward[0]) for reward in rewards))


def load_problems(path: Path) -> list[SampledProblem]:
    """Every problem of the JSONL file at `path` (blank lines skipped); InputError on the first bad line, on a
    repeated `idx`, or on a file with no problem."""
    problems: list[SampledProblem] = []
    seen: set[int] = set()
    try:
        for where, record in read_jsonl_lines(path):
            problem = parse_line(record, where)
            if problem.problem_id in seen:
                raise InputError(f"{where}: field 'idx': {problem.problem_id} appears twice")
            seen.add(problem.problem_id)
            problems.append(problem)
    except InputError:
        raise
    except ValueError as error:  # a line that is not JSON
        raise InputError(str(error)) from None
    if not problems:
        raise InputError(f"{path}: no problems")
    return problems


# The methods, each graded both ways --------------------------------------------------------------------------


def pass_at(num_responses: int, num_correct: int, sample_size: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): the chance that `sample_size` of the responses, drawn without
    replacement, hold at least one of the `num_correct` correct ones."""
    if num_responses - num_correct < sample_size:
        return 1.0
    return 1.0 - math.comb(num_responses - num_correct, sample_size) / math.comb(num_responses, sample_size)


def _graded(problem: SampledProblem, index: int | None) -> tuple[float, float]:
    """(math-verify grade, dataset label) of response `index`; both 0 when nothing was chosen."""
    if index is None:
        return 0.0, 0.0
    answer = problem.answers[index]
    return float(answer is not None and same_answer(problem.gold, answer)), float(problem.labels[index])


def _vote_outcome(problem: SampledProblem, winner: str | None, sample_size: int) -> tuple[float, float]:
    """A vote's winner graded both ways; its label is that of the winning class's first response, which holds
    the winner's very string (a vote returns a class as its first member)."""
    index = None if winner is None else problem.answers[:sample_size].index(winner)
    return _graded(problem, index)


def outcomes(problem: SampledProblem, sample_size: int) -> dict[str, tuple[float, float]]:
    """Method -> (outcome by the math-verify grader, outcome by the labels) on the first `sample_size` responses
    of `problem` (pass@N reads all of them)."""
    answers, rewards = problem.answers[:sample_size], problem.rewards[:sample_size]
    graded_correct = sum(answer is not None and same_answer(problem.gold, answer) for answer in problem.answers)
    total = len(problem.answers)
    # Each response enters the project's Best-of-N as a finished one-step candidate: its answer, its reward.
    candidates = [Candidate(steps=(answer or "",), step_scores=(reward,), finished=True)
                  for answer, reward in zip(answers, rewards)]
    best = best_of_n(candidates, "last", lambda steps: steps[-1] or None)
    best_index = next((i for i, candidate in enumerate(candidates) if candidate is best), None)
    weights = [math.exp(reward) for reward in rewards]
    return {
        "pass@N": (pass_at(total, graded_correct, sample_size), pass_at(total, sum(problem.labels), sample_size)),
        "majority_vote": _vote_outcome(problem, majority_vote(answers, same=equivalent), sample_size),
        "best_of_n": _graded(problem, best_index),
        "weighted_vote": _vote_outcome(problem, weighted_vote(answers, weights, same=equivalent), sample_size),
    }


def evaluate(problems: list[SampledProblem]) -> list[Row]:
    """One Row per N in SAMPLE_SIZES and method in METHODS: mean outcome over `problems` by each grading."""
    rows = []
    for sample_size in SAMPLE_SIZES:
        per_problem = [(problem.problem_id, outcomes(problem, sample_size)) for problem in problems]
        for method in METHODS:
            graded = [(problem_id, result[method]) for problem_id, result in per_problem]
            rows.append(Row(
                sample_size, method,
                math_verify=sum(by_grader for _, (by_grader, _) in graded) / len(graded),
                labels=sum(by_label for _, (_, by_label) in graded) / len(graded),
                disagreements=tuple(problem_id for problem_id, (by_grader, by_label) in graded
                                    if not math.isclose(by_grader, by_label, abs_tol=1e-12)),
            ))
    return rows


# Output ------------------------------------------------------------------------------------------------------


def table(rows: list[Row], data: Path, problems: list[SampledProblem]) -> str:
    """The rows as a markdown table, with what was graded how above it and the disagreeing problems below."""
    lines = [f"{data.name}: {len(problems)} problems; weighted vote weight = {WEIGHTS}; accuracy graded (a) by "
             "math-verify against `gt`, (b) by the dataset's `score` labels", "",
             "| N | method | math-verify | labels | disagree | problems |", "|---|---|---|---|---|---|"]
    for row in rows:
        ids = " ".join(str(problem_id) for problem_id in row.disagreements) or "-"
        lines.append(f"| {row.sample_size} | {row.method} | {row.math_verify:.3f} | {row.labels:.3f} "
                     f"| {len(row.disagreements)} | {ids} |")
    disagreeing = sorted({problem_id for row in rows for problem_id in row.disagreements})
    lines += ["", f"problems where (a) and (b) disagree in any row: {len(disagreeing)}"
              + (f" ({' '.join(map(str, disagreeing))})" if disagreeing else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="input JSONL (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here (atomically)")
    args = parser.parse_args(argv)
    try:
        problems = load_problems(args.data)
    except (InputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = evaluate(problems)
    print(table(rows, args.data, problems))
    if args.out is not None:
        disagreeing = sorted({problem_id for row in rows for problem_id in row.disagreements})
        result = {"data": str(args.data), "problems": len(problems), "weighted_vote_weight": WEIGHTS,
                  "rows": [asdict(row) for row in rows], "disagreeing_problems": disagreeing}
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
