"""`python -m rest_mcts.evaluate` runs the round evaluation's MCTS*: on a round's checkpoints and problems, with a
budget that does not bind, its MCTS* answers every problem as the round's evaluation did, with the same tokens;
`--plain-mcts` is a different search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evaluated_round(tmp_path_factory):
    """A run folder whose round 0 holds tiny checkpoints and the round evaluation's results (run in this process
    on a 2-CPU Ray cluster), as `iterate` leaves it."""
    import ray

    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.data import atomic_write_text
    from lm.tokenizer import build_char_tokenizer
    from rest_mcts.config import ClusterConfig, EvalConfig, ModelConfig, RunConfig, TaskConfig
    from rest_mcts.flags import save_yaml
    from rest_mcts.rounds import Round
    from rest_mcts.stages import Context
    from rest_mcts.stages import evaluate_round as evaluate

    run_dir = tmp_path_factory.mktemp("run")
    config = RunConfig(
        task=TaskConfig(seed_problems=10, train_problems=40, problems_per_round=8, test_problems=8, ood_problems=4),
        model=ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
        eval=EvalConfig(max_simulations=4, dev_problems=6),
        cluster=ClusterConfig(problems_per_task=3, colocate=False),
    )
    config = replace(config, search=replace(config.search, max_step_tokens=8, max_depth=5))
    atomic_write_text(run_dir / "config.yaml", save_yaml(config))
    round_ = Round.of(run_dir, 0)
    tokenizer = build_char_tokenizer()
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, round_.policy)
    save_checkpoint(prm_from_policy(round_.policy, seed=1), tokenizer, round_.prm)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    context = Context.of(config, run_dir)
    try:
        round_.record("evaluate", 0.0, evaluate(context, round_))
    finally:
        context.actors.release()
        ray.shutdown()
    round_.finish()
    return config, run_dir, round_


def evaluate_mcts(run_dir: Path, out: Path, *extra: str) -> list[dict]:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "rest_mcts.evaluate", "--run", str(run_dir), "--methods", "mcts",
                             "--budgets", "1000000", "--splits", "test", "--out", str(out), *extra],
                            env=env, cwd=out.parent, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def round_answers(config, round_) -> dict[str, tuple[str | None, int]]:
    """(answer, tokens) of the round evaluation's MCTS* on each test problem."""
    from rest_mcts.tasks import get_task
    from search.mcts import best_answer_node
    from search.tree import Tree

    task = get_task(config.task.name)
    margin = round_.read_summary()["dev/mcts/answer_margin"]
    answers = {}
    for line in (round_.path / "eval_test_trees.jsonl").read_text().splitlines():
        tree = Tree.from_dict(json.loads(line))
        best = best_answer_node(tree, margin)
        answer = task.extract_answer(tree.steps_of(best)) if best is not None else None
        answers[tree.problem_id] = (answer, tree.tokens_used)
    return answers


@pytest.mark.slow
def test_evaluate_mcts_answers_as_the_round_evaluation_did_and_plain_mcts_is_another_search(
        evaluated_round, tmp_path):
    config, run_dir, round_ = evaluated_round
    expected = round_answers(config, round_)
    assert len(expected) == config.task.test_problems

    records = evaluate_mcts(run_dir, tmp_path / "round_mcts")
    got = {record["problem_id"]: (record["answer"], record["tokens"]) for record in records
           if record["method"] == "mcts"}
    assert got == expected
    accuracy = sum(record["correct"] for record in records if record["method"] == "mcts") / len(got)
    assert accuracy == pytest.approx(round_.read_summary()["test/mcts/accuracy"])

    plain = evaluate_mcts(run_dir, tmp_path / "plain_mcts", "--plain-mcts")
    plain_tokens = {record["problem_id"]: record["tokens"] for record in plain if record["method"] == "mcts"}
    assert plain_tokens != {problem_id: tokens for problem_id, (_, tokens) in expected.items()}


@pytest.mark.slow
def test_the_rounds_answer_margin_applies_to_its_own_checkpoints_only(evaluated_round, tmp_path):
    from rest_mcts.evaluate import build_parser, resolve

    config, run_dir, round_ = evaluated_round
    round_margin = round_.read_summary()["dev/mcts/answer_margin"]
    assert round_margin != config.eval.answer_margin  # else this test could not tell the two apart
    own = resolve(build_parser().parse_args(["--run", str(run_dir), "--out", str(tmp_path / "own")]))
    assert own.answer_margin == round_margin and own.policy == str(round_.policy)
    other = resolve(build_parser().parse_args(["--run", str(run_dir), "--out", str(tmp_path / "other"),
                                               "--policy-model", str(round_.policy),
                                               "--prm-model", str(round_.prm)]))
    assert other.answer_margin == config.eval.answer_margin
    plain = resolve(build_parser().parse_args(["--run", str(run_dir), "--out", str(tmp_path / "plain"),
                                               "--plain-mcts"]))
    assert plain.answer_margin == 0.0
