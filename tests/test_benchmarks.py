"""The benchmark scripts run end to end on tiny settings and print their figures (no speed is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_search_throughput_benchmark_prints_every_mode_and_the_ratios():
    output = run_benchmark("search_throughput.py", "--problems", "4", "--naive-problems", "1", "--simulations",
                           "2", "--generate-batch", "4", "--generate-tokens", "4", "--repeats", "2")
    for line in ("batched MCTS*, KV reuse", "batched MCTS*, generate", "naive MCTS*", "generate batch 4",
                 "arithmetic ceiling", "batched / naive tokens/s:", "batched MCTS* / generate:"):
        assert line in output


@pytest.mark.slow
def test_ray_scaling_benchmark_compares_one_and_two_workers():
    output = run_benchmark("ray_scaling.py", "--problems", "4", "--problems-per-task", "2", "--simulations", "1")
    assert "2 workers / 1 worker tokens/s:" in output


@pytest.mark.slow
def test_training_benchmark_compares_deepspeed_with_a_plain_loop():
    output = run_benchmark("train_throughput.py", "--steps", "3", "--examples", "40", "--micro-batch", "8")
    assert "DeepSpeed / plain tokens/s:" in output and "plain PyTorch" in output


@pytest.mark.slow
def test_colocation_benchmark_compares_colocated_and_separate_actors():
    output = run_benchmark("colocation.py", "--cycles", "2", "--problems", "2", "--train-steps", "2")
    assert "separate (stopped between stages)" in output and "colocated (up for the run)" in output
    assert "colocated / separate total seconds:" in output
