"""Evaluation at equal token budgets: budget plans, summaries, every method on an oracle fake policy, and the
`python -m rest_mcts.evaluate` CLI (bad input, and a tiny real run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rest_mcts.comparison import bootstrap_interval, summarize
from rest_mcts.methods import METHODS, MethodCall, MethodRecord, plan_budget, run_call
from rest_mcts.tasks import get_task
from search.mcts import MCTSParams
from search.types import ProposedStep
from tests.wandb_reader import history_rows

REPO = Path(__file__).resolve().parents[1]


def test_budget_plan_sizes_each_method_from_the_greedy_solution_length():
    plan = plan_budget(200, greedy_tokens=25.0, beam_branch=2, tot_branch=3)
    assert (plan.num_samples, plan.beam_width, plan.tot_breadth) == (8, 8, 3)  # 200/25 = 8; 8/3 -> 3
    small = plan_budget(10, greedy_tokens=25.0, beam_branch=2, tot_branch=3)
    assert (small.num_samples, small.beam_width, small.tot_breadth) == (1, 2, 1)
    with pytest.raises(ValueError, match="budget 0"):
        plan_budget(0, 25.0, 2, 3)


def _records(outcomes: dict[tuple[int, str], bool], method="greedy", tokens=10):
    return [MethodRecord("test", method, 0, seed, pid, correct, tokens, 0.5)
            for (seed, pid), correct in outcomes.items()]


def test_summary_averages_over_problems_and_seeds_with_an_interval_around_the_mean():
    outcomes = {(0, "a"): True, (0, "b"): False, (0, "c"): True, (0, "d"): True,
                (1, "a"): True, (1, "b"): False, (1, "c"): False, (1, "d"): True}
    [row] = summarize(_records(outcomes))
    assert row.accuracy == pytest.approx(5 / 8) and row.seeds == 2 and row.problems == 4
    assert row.ci_low <= row.accuracy <= row.ci_high and row.ci_low >= 0 and row.ci_high <= 1
    assert row.tokens_per_problem == 10 and row.seconds_per_problem == 0.5
    assert bootstrap_interval(np.ones((2, 5))) == (1.0, 1.0)


def test_summary_rejects_a_seed_that_misses_problems():
    with pytest.raises(ValueError, match="not every seed covers every problem"):
        summarize(_records({(0, "a"): True, (0, "b"): True, (1, "a"): True}))


class OraclePolicy:
    """Proposes the reference solution's next step (num_tokens = its length); the PRM fake scores by truth."""

    def __init__(self, task, problems):
        self.task = task
        self.references = {task.format_prompt(p): task.reference_steps(p) for p in problems}
        self.problems = {task.format_prompt(p): p for p in problems}

    def _next(self, prefix):
        step_text = self.references[prefix.prompt][len(prefix.steps)]
        return ProposedStep(step_text, len(step_text), self.task.is_final_step(step_text))

    def propose(self, prefixes, num_samples):
        return [[self._next(prefix) for _ in range(num_samples)] for prefix in prefixes]

    def greedy(self, prefixes):
        return [self._next(prefix) for prefix in prefixes]

    def score(self, prefixes):
        return [1.0 if all(self.task.step_labels(self.problems[p.prompt], p.steps)) else 0.0 for p in prefixes]


@pytest.mark.parametrize("group", ["greedy", "sampling", "beam_search", "tot_bfs", "mcts"])
def test_every_method_solves_every_problem_with_an_oracle_policy(group):
    task = get_task("modchain")
    problems = task.problems("test", 5, seed=0)
    oracle = OraclePolicy(task, problems)
    plan = None if group == "greedy" else plan_budget(1000, greedy_tokens=100.0, beam_branch=2, tot_branch=3)
    call = MethodCall(group=group, split="test", seed=0, plan=plan, mcts=MCTSParams(branch=3, max_simulations=50))
    records = run_call(call, task, problems, oracle.propose, oracle.greedy, oracle.score)
    assert records and all(record.correct for record in records)
    solution_tokens = {p.id: sum(len(s) for s in task.reference_steps(p)) for p in problems}
    by_method = {}
    for record in records:
        by_method.setdefault(record.method, []).append(record)
    for method, method_records in by_method.items():
        assert method in METHODS and len(method_records) == len(problems)
        for record in method_records:
            if method == "greedy":
                assert record.tokens == solution_tokens[record.problem_id]
            elif group == "sampling":  # N = 1000 / 100 = 10 identical solutions
                assert record.tokens == 10 * solution_tokens[record.problem_id]
            elif group == "mcts":
                # The first simulation expands the root into 3 identical steps (two dropped); the search walks
                # down the single path, three steps per level, and stops at end_gate on the final step.
                assert record.tokens == 3 * solution_tokens[record.problem_id]
    if group == "sampling":
        assert set(by_method) == {"self_consistency", "best_of_n_min", "best_of_n_prod", "best_of_n_last",
                                  "best_of_n_mean", "weighted_vote", "pass_at_n"}


def evaluate_cli(args, cwd):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rest_mcts.evaluate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy-model", "p", "--prm-model", "q", "--methods", "greedy", "magic"],
         "--methods magic: unknown method"),
        (["--policy-model", "p", "--prm-model", "q", "--budgets", "100", "0", "-5"],
         "--budgets 0 -5: expected positive"),
        (["--policy-model", "does/not/exist", "--prm-model", "q"], "does/not/exist: no such path"),
        (["--run", "no/such/run"], "--run no/such/run: not an iterate run folder"),
        (["--budgets", "100"], "give --run"),
        (["--policy-model", "p", "--prm-model", "q", "--problems", "5000"],
         "--problems 5000: the test split holds at most"),
    ],
)
def test_evaluate_rejects_bad_input_with_a_clear_error(tmp_path, args, message):
    result = evaluate_cli(args, tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    folder = tmp_path_factory.mktemp("checkpoints")
    tokenizer = build_char_tokenizer()
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, folder / "policy")
    save_checkpoint(prm_from_policy(folder / "policy", seed=1), tokenizer, folder / "prm")
    return folder


@pytest.mark.slow
def test_evaluate_cli_writes_records_summary_plots_and_a_wandb_run(tmp_path, tiny_checkpoints):
    out = tmp_path / "out"
    args = ["--policy-model", str(tiny_checkpoints / "policy"), "--prm-model", str(tiny_checkpoints / "prm"),
            "--methods", "greedy", "self_consistency", "best_of_n_min", "mcts", "--budgets", "20", "40",
            "--problems", "4", "--splits", "test", "--cluster.search_workers", "1", "--out", str(out)]
    result = evaluate_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    # greedy once; three methods at two budgets; four problems each.
    assert len(records) == 4 * (1 + 3 * 2)
    summary = json.loads((out / "summary.json").read_text())
    assert {(row["method"], row["budget"]) for row in summary["rows"]} == {
        ("greedy", 0), *((m, b) for m in ("self_consistency", "best_of_n_min", "mcts") for b in (20, 40))}
    assert (out / "accuracy_vs_tokens_test.png").stat().st_size > 1000
    assert "| test | mcts | 40 |" in (out / "table.md").read_text()
    [run_file] = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    [logged] = history_rows(run_file)
    assert logged["test/mcts/40/accuracy"] == pytest.approx(
        next(row["accuracy"] for row in summary["rows"] if (row["method"], row["budget"]) == ("mcts", 40)))
    again = evaluate_cli(args, tmp_path)
    assert again.returncode == 2 and "already holds results" in again.stderr
