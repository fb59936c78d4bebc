"""A self-training run on real data through the real CLI: GSM8K's shipped files, a tiny policy saved with a
locally trained byte-level BPE tokenizer that has a chat template (as a user's checkpoint would have)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lm.build import build_tiny_policy
from lm.checkpoints import save_checkpoint
from lm.tokenizer import build_bpe_tokenizer
from rest_mcts.config import TaskConfig
from rest_mcts.tasks import get_task
from tests.test_iterate import REPO, finish, iterate


def save_gsm8k_policy(path) -> None:
    """A tiny random policy with a byte-level BPE tokenizer trained on GSM8K's seed solutions, with a chat template."""
    task = get_task(TaskConfig(name="gsm8k", seed_problems=100, train_problems=100))
    texts = [example.prompt + "".join(example.steps) for example in task.seed_examples(100, 0)]
    tokenizer = build_bpe_tokenizer(texts, vocab_size=600, chat=True)
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 1024, seed=0), tokenizer, path)


@pytest.mark.slow
def test_a_gsm8k_run_on_a_chat_template_checkpoint_searches_trains_and_evaluates(tmp_path):
    save_gsm8k_policy(tmp_path / "policy")
    code, output = finish(iterate([
        "--task", "gsm8k", "--model.policy_model", str(tmp_path / "policy"), "--rounds", "1",
        "--run-dir", "runs", "--task.seed_problems", "32", "--task.train_problems", "40",
        "--task.problems_per_round", "6", "--task.test_problems", "4", "--eval.dev_problems", "4",
        "--policy_train.warm_start_steps", "2", "--prm_train.warm_start_steps", "2", "--policy_train.max_steps", "2",
        "--prm_train.max_steps", "2", "--search.max_simulations", "2", "--eval.max_simulations", "2",
        "--eval.pass_at_k", "2", "--search.max_depth", "3", "--cluster.problems_per_task", "3"], tmp_path))
    assert code == 0, output
    run = tmp_path / "runs" / "default"
    for index in (0, 1):
        metrics = json.loads((run / f"round_{index:02d}" / "eval.json").read_text())
        assert 0.0 <= metrics["test/mcts/accuracy"] <= 1.0
        assert not any(key.startswith("ood/") for key in metrics)  # GSM8K has no ood split
    trees = [json.loads(line) for line in (run / "round_01" / "trees.jsonl").read_text().splitlines()]
    assert len(trees) == 6
    assert all(tree["prompt"].startswith("<s><|system|>") and tree["prompt"].endswith("<|assistant|>\n")
               for tree in trees)
    values = [json.loads(line) for line in (run / "round_01" / "value_examples.jsonl").read_text().splitlines()]
    assert values and all(value["prompt"] in {tree["prompt"] for tree in trees} for value in values)
    # The run's data exports for other tools with the prompts it was searched and trained with.
    exported = subprocess.run([sys.executable, "-m", "rest_mcts.export", "--run", str(run), "--out",
                               str(tmp_path / "export")], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in (tmp_path / "export" / "prm_stepwise.jsonl").read_text().splitlines()]
    assert rows and all(row["prompt"] in {tree["prompt"] for tree in trees} for row in rows)
    # The comparison CLI reads the same run: GSM8K has no ood split, so only test is evaluated.
    compared = subprocess.run([sys.executable, "-m", "rest_mcts.evaluate", "--run", str(run), "--problems", "2",
                               "--budgets", "60", "--methods", "greedy", "mcts", "--out", str(tmp_path / "compare")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"})
    assert compared.returncode == 0, compared.stdout[-3000:] + compared.stderr[-3000:]
    assert json.loads((tmp_path / "compare" / "summary.json").read_text())["meta"]["splits"] == ["test"]
