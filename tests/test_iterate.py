"""The real `python -m rest_mcts.iterate` CLI in subprocesses: bad input, and a tiny run that is
interrupted, resumed, and leaves loadable checkpoints, eval.json files and a W&B offline run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.wandb_reader import history_rows

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "--task.seed_problems", "60", "--task.problems_per_round", "12", "--task.test_problems", "12",
    "--task.ood_problems", "8", "--policy_train.warm_start_steps", "6", "--policy_train.max_steps", "4",
    "--prm_train.warm_start_steps", "4", "--prm_train.max_steps", "4", "--search.max_simulations", "3",
    "--eval.max_simulations", "2", "--cluster.problems_per_task", "6", "--model.hidden_size", "32",
    "--model.num_layers", "1", "--model.intermediate_size", "64", "--eval.dev_problems", "6",
]


SECRETS = {"WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567", "HF_TOKEN": "hf_secrettokenvalue123",
           "OPENAI_API_KEY": "sk-secretvalue456"}
"""Secrets in the environment of the runs below; none may reach a log, a saved config or the W&B files."""


def iterate(args: list[str], tmp_path: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO), **SECRETS}
    return subprocess.Popen([sys.executable, "-m", "rest_mcts.iterate", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


@pytest.mark.parametrize(
    "args, message",
    [  # the process itself exits 2; tests/test_bad_inputs.py tries every bad input through main
        (["--model.hidden_size", "130"], "--model.hidden_size 130: expected a multiple of --model.num_heads"),
        (["--task.test_problems", "5000"], "the test split holds at most 1000 problems"),
        (["--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: no Ray cluster answers there"),
    ],
)
def test_bad_flags_exit_non_zero_with_a_clear_error_and_write_nothing(tmp_path, args, message):
    code, output = finish(iterate(args + ["--run-dir", "runs"], tmp_path), timeout=600)  # a hang guard only
    assert code == 2, output
    assert message in output
    assert not (tmp_path / "runs").exists()


def read_trees(path: Path) -> dict[str, str]:
    """problem id -> its tree's JSON line; fails on a problem with two trees."""
    trees: dict[str, str] = {}
    for line in path.read_text().splitlines():
        problem_id = json.loads(line)["problem_id"]
        assert problem_id not in trees, f"{path}: two trees of {problem_id}"
        trees[problem_id] = line
    return trees


def wait_for(process: subprocess.Popen, condition, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not condition():
        time.sleep(0.05)
    assert process.poll() is None and condition(), finish(process)[1]


def kill_after_stage(args: list[str], tmp_path: Path, round_folder: Path, stage: str) -> Path:
    """Start `iterate args` and kill it (and its Ray cluster) once `round_folder`'s stages.json records `stage`,
    before the round is done; the round folder."""
    stages = round_folder / "stages.json"
    process = iterate(args, tmp_path, start_new_session=True)
    wait_for(process, lambda: stages.exists() and stage in json.loads(stages.read_text()))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (round_folder / "DONE").exists()
    return round_folder


@pytest.mark.slow
def test_a_run_killed_mid_search_resumes_to_the_eval_json_of_an_uninterrupted_run(tmp_path):
    """The driver (and its Ray cluster) killed after the first shard of round 1's search was written: --resume
    searches only the missing shards and ends with the same trees and byte-identical eval.json files as a run
    that was never interrupted; the resumed run leaves loadable checkpoints and logs every round to W&B."""
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    tiny = [*TINY, "--cluster.problems_per_task", "2"]  # 6 shards a round, so the kill falls between two
    code, output = finish(iterate(["--rounds", "1", "--run-dir", "runs", "--experiment", "whole", *tiny], tmp_path))
    assert code == 0, output
    whole = tmp_path / "runs" / "whole"

    args = ["--rounds", "1", "--run-dir", "runs", "--experiment", "tiny", *tiny]
    run = tmp_path / "runs" / "tiny"
    trees_file = run / "round_01" / "trees.jsonl"
    process = iterate(args, tmp_path, start_new_session=True)
    wait_for(process, lambda: trees_file.exists() and trees_file.stat().st_size > 0)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (run / "round_01" / "stages.json").exists()  # search, round 1's first stage, was not finished
    assert (run / "round_00" / "DONE").exists() and not (run / "round_01" / "DONE").exists()
    before = read_trees(trees_file)
    assert 0 < len(before) < 12
    with open(trees_file, "a") as handle:  # an append the kill tore
        handle.write('{"problem_id": "torn')

    code, output = finish(iterate(["--resume", "--run-dir", "runs", "--experiment", "tiny"], tmp_path))
    assert code == 0, output
    assert f"round 1 search: {len(before)} trees already in" in output
    assert "torn last line" in output
    after = read_trees(trees_file)
    assert len(after) == 12 and all(after[key] == line for key, line in before.items())  # never recomputed
    assert after == read_trees(whole / "round_01" / "trees.jsonl")
    for index in range(2):
        name = f"round_{index:02d}"
        assert (run / name / "eval.json").read_bytes() == (whole / name / "eval.json").read_bytes(), name
        metrics = json.loads((run / name / "eval.json").read_text())
        for key in ("test/greedy/accuracy", "test/mcts/accuracy", "ood/greedy/accuracy", "ood/mcts/accuracy",
                    "dev/mcts/answer_margin", "dev/mcts/accuracy", "search/tokens", "examples/policy"):
            assert key in metrics, (index, key)
        timing = json.loads((run / name / "timing.json").read_text())
        assert {"timing_s/search", "timing_s/train_policy", "perf/tokens_per_s"} <= set(timing)
        assert not set(timing) & set(metrics)
        policy = AutoModelForCausalLM.from_pretrained(run / name / "policy")
        prm = AutoModelForTokenClassification.from_pretrained(run / name / "prm")
        assert prm.config.num_labels == 1 and policy.config.vocab_size > 0
        for file in ("trees.jsonl", "value_examples.jsonl", "policy_examples.jsonl", "policy_train_log.jsonl",
                     "eval_dev_trees.jsonl"):
            assert (run / name / file).exists(), (index, file)

    # The W&B offline runs hold every round's metrics (the resumed run re-logs round 0), timings included.
    logged = {}
    for run_file in sorted((run / "wandb").glob("offline-run-*/run-*.wandb")):
        for row in history_rows(run_file):
            logged[row["round"]] = row
    assert sorted(logged) == [0, 1]
    for index in range(2):
        metrics = json.loads((run / f"round_{index:02d}" / "eval.json").read_text())
        assert logged[index]["test/greedy/accuracy"] == pytest.approx(metrics["test/greedy/accuracy"])
        assert "timing_s/search" in logged[index]
    assert "test greedy" in output and "Ray dashboard: http://127.0.0.1" in output
    assert "train policy: step 4/4" in output  # training progress reaches the console
    for secret in SECRETS.values():  # no secret in the console, the run folders or their W&B files
        assert secret not in output
        for file in (tmp_path / "runs").rglob("*"):
            assert not file.is_file() or secret.encode() not in file.read_bytes(), file


@pytest.mark.slow
def test_rest_em_samples_as_many_tokens_as_the_matched_rest_mcts_search_and_trains_the_policy_only(tmp_path):
    base = ["--rounds", "1", "--run-dir", "runs", *TINY, "--eval.pass_at_k", "2"]
    code, output = finish(iterate([*base, "--experiment", "mcts"], tmp_path))
    assert code == 0, output
    code, output = finish(iterate([*base, "--experiment", "em", "--method", "rest_em",
                                   "--rest_em.match_tokens_of", "runs/mcts"], tmp_path))
    assert code == 0, output
    mcts, em = (tmp_path / "runs" / name / "round_01" for name in ("mcts", "em"))
    target = json.loads((mcts / "eval.json").read_text())["search/tokens"]
    metrics = json.loads((em / "eval.json").read_text())
    assert metrics["sample/target_tokens"] == target
    samples = [json.loads(line) for line in (em / "samples.jsonl").read_text().splitlines()]
    spent = sum(row["tokens"] for row in samples)
    assert spent == metrics["sample/tokens"]
    per_sample = spent / (metrics["sample/per_problem"] * 12)  # 12 problems a round
    assert abs(spent - target) <= per_sample * 12  # within one wave of one sample per problem
    assert not (em / "value_examples.jsonl").exists() and not (em / "trees.jsonl").exists()
    assert (em / "policy_examples.jsonl").exists() and (em / "prm").is_dir()
    assert "test/greedy/accuracy" in metrics and "test/pass_at_2/accuracy" not in metrics  # pass@k: round 0
    assert "test/pass_at_2/accuracy" in json.loads((tmp_path / "runs" / "em" / "round_00" / "eval.json").read_text())


@pytest.mark.slow
def test_a_verifier_trained_in_every_round_joins_the_round_evaluations_mcts(tmp_path):
    from transformers import AutoModelForCausalLM

    # The tiny policy finds no right solution, so GenRM trains without its lambda term (which needs one).
    args = ["--rounds", "1", "--run-dir", "runs", "--experiment", "verified", *TINY, "--eval.pass_at_k", "0",
            "--verifier.train_in_rounds", "true", "--verifier.kind", "genrm", "--verifier.solution_weight", "0",
            "--verifier_train.max_steps", "3"]
    code, output = finish(iterate(args, tmp_path))
    assert code == 0, output
    for index in range(2):
        round_dir = tmp_path / "runs" / "verified" / f"round_{index:02d}"
        stages = list(json.loads((round_dir / "stages.json").read_text()))
        assert stages[-2:] == ["train_verifier", "evaluate"]
        assert AutoModelForCausalLM.from_pretrained(round_dir / "verifier").config.vocab_size > 0
        metrics = json.loads((round_dir / "eval.json").read_text())
        assert metrics["verifier/steps"] == 3 and metrics["verifier/examples"] > 0
        for split in ("test", "ood"):
            assert 0.0 <= metrics[f"{split}/mcts_leaf_verifier/accuracy"] <= 1.0
            assert metrics[f"{split}/mcts_leaf_verifier/tokens_per_problem"] > 0
            assert f"{split}/mcts/accuracy" in metrics and f"{split}/mcts_step_verifier/accuracy" not in metrics
            assert (round_dir / f"eval_{split}_trees_mcts_leaf_verifier.jsonl").exists()


@pytest.mark.slow
def test_zero_rounds_runs_the_warm_start_and_its_evaluation_alone(tmp_path):
    code, output = finish(iterate(["--rounds", "0", "--run-dir", "runs", "--experiment", "warm", *TINY,
                                   "--eval.pass_at_k", "0"], tmp_path))
    assert code == 0, output
    run = tmp_path / "runs" / "warm"
    assert (run / "round_00" / "DONE").exists() and not (run / "round_01").exists()
    assert "test/greedy/accuracy" in json.loads((run / "round_00" / "eval.json").read_text())
