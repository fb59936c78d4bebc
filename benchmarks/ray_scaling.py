"""Ray scaling of search: MCTS* throughput with 1 and 2 search workers (one CPU each), same problems, same
models, measured side by side in one run, and where the time goes (sampling, PRM, tree, Ray transfer).

Usage: python benchmarks/ray_scaling.py [--policy P --prm Q] [--problems 128] [--problems-per-task 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_model_arguments, machine, model_paths, print_table  # noqa: E402


def search_with(workers: int, settings, problems, params, per_task: int) -> dict:
    from rest_mcts.workers import SearchPool, shard
    from search.tree import Tree

    pool = SearchPool(settings, workers, num_cpus=1.0, num_gpus=0.0, name=f"bench-{workers}w", timeout_s=1800)
    try:
        pool.map("search", [problems[:2]] * workers, params, label="warm-up")  # load models, first calls
        started = time.perf_counter()
        results = pool.map("search", shard(problems, per_task, workers), params, label=f"{workers} workers")
        seconds = time.perf_counter() - started
    finally:
        pool.shutdown()
    records = [record for batch in results for record in batch]
    trees = [Tree.from_dict(record) for record in records]
    tokens = sum(tree.tokens_used for tree in trees)
    payload = sum(len(json.dumps(record)) for record in records)
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
            "nodes_per_s": sum(len(tree.nodes) - 1 for tree in trees) / seconds, "result_bytes": payload}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--problems", type=int, default=128, help="Problems searched in each setting.")
    parser.add_argument("--problems-per-task", type=int, default=32, help="Problems per Ray task (one shard).")
    parser.add_argument("--simulations", type=int, default=8, help="MCTS* simulations per tree (full budget).")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)  # the driver's share; each worker sets its own to its CPUs
    import ray

    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.tasks import get_task
    from search.mcts import MCTSParams

    policy_path, prm_path = model_paths(args)
    task = get_task(args.task)
    problems = task.problems("test", args.problems, seed=0)
    params = MCTSParams(branch=3, max_simulations=args.simulations, stop_at_end_gate=False, max_depth=10)
    settings = SamplerSettings(policy_path, prm_path, task.name, temperature=1.0, max_step_tokens=24, seed=0)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        one = search_with(1, settings, problems, params, args.problems_per_task)
        two = search_with(2, settings, problems, params, args.problems_per_task)
    finally:
        ray.shutdown()
    print(f"machine: {machine()}")
    header = ["workers", "seconds", "tokens", "tokens/s", "nodes/s", "result MB"]
    rows = [[w, r["seconds"], r["tokens"], r["tokens_per_s"], r["nodes_per_s"], r["result_bytes"] / 1e6]
            for w, r in ((1, one), (2, two))]
    print_table(f"Ray search workers, 1 CPU each ({args.problems} problems, shards of {args.problems_per_task})",
                header, rows)
    print(f"\n2 workers / 1 worker tokens/s: {two['tokens_per_s'] / one['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
