"""What the benchmarks share: the models under test (a run's checkpoints or the embedded tiny ones) and their task,
the machine's description, and printing figures side by side."""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="", help="Policy checkpoint (default: the embedded tiny policy, "
                        "random weights, built here).")
    parser.add_argument("--prm", default="", help="PRM checkpoint (default: a PRM made from the policy).")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: one search worker's CPU share).")
    from rest_mcts.config import RunConfig

    parser.add_argument("--task", default=RunConfig().task.name,
                        help="Synthetic task whose problems the benchmark uses (default: the default run's, the one "
                             "its checkpoints were trained on).")


def model_paths(args: argparse.Namespace) -> tuple[str, str]:
    """The policy and PRM checkpoints: the given ones, else the embedded tiny models saved to a temp folder."""
    if args.policy and args.prm:
        return args.policy, args.prm
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    folder = Path(tempfile.mkdtemp(prefix="rest-mcts-bench-"))
    tokenizer = build_char_tokenizer()
    policy = args.policy or str(folder / "policy")
    if not args.policy:
        save_checkpoint(build_tiny_policy(tokenizer, seed=0), tokenizer, Path(policy))
    prm = args.prm or str(folder / "prm")
    if not args.prm:
        save_checkpoint(prm_from_policy(policy, seed=1), tokenizer, Path(prm))
    return policy, prm


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, " \
           f"{torch.get_num_threads()} torch threads"


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Measured fp32 matmul rate of this process (GFLOP/s): the arithmetic ceiling's basis."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
