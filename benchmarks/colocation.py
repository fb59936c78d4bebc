"""Colocated against separate actors: the loop's alternation of search and training stages, with the
search workers and trainer ranks colocated on one placement group (up for the whole run) and with each
stage's actors stopped before the other kind starts, measured side by side in one run.

Each cycle searches problems with the last trained policy (2 workers), then trains the policy on seed
solutions (2 DeepSpeed ranks), through the run's own actor handling (`rest_mcts.actors.Actors`).

Usage: python benchmarks/colocation.py [--cycles 3] [--problems 32] [--train-steps 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, print_table  # noqa: E402


def alternate(colocate: bool, cycles: int, problems: int, train_steps: int, folder: Path) -> dict:
    """Seconds of each search and training stage over `cycles` search-then-train cycles."""
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer
    from rest_mcts.actors import Actors
    from rest_mcts.config import ClusterConfig, RunConfig
    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.tasks import get_task
    from rest_mcts.workers import search_to_file

    config = RunConfig(cluster=replace(ClusterConfig(), colocate=colocate))
    task = get_task(config.task)
    all_problems = task.problems("train", problems * cycles, seed=0)
    seed_examples = task.seed_examples(200, seed=0)
    tokenizer = build_char_tokenizer()
    policy = folder / "policy0"
    save_checkpoint(build_tiny_policy(tokenizer, seed=0), tokenizer, policy)
    prm = folder / "prm"
    save_checkpoint(prm_from_policy(policy, seed=1), tokenizer, prm)
    actors = Actors(config.cluster, "colocation-benchmark")
    spec = replace(config.policy_train, max_steps=train_steps, warmup_steps=1)
    search_s, train_s = [], []
    try:
        for cycle in range(cycles):
            started = time.perf_counter()
            settings = SamplerSettings.from_config(config, str(policy), str(prm), temperature=1.0, seed=cycle)
            pool = actors.search_pool(settings, f"r{cycle:02d}-search")
            search_to_file(pool, all_problems[cycle * problems:(cycle + 1) * problems], config.search.mcts_params(),
                           folder / f"trees{cycle}.jsonl", config.cluster.problems_per_task, f"cycle {cycle} search")
            search_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            trained = folder / f"policy{cycle + 1}"
            actors.trainers(f"r{cycle:02d}-train").train("policy", policy, seed_examples, spec, trained,
                                                         f"cycle {cycle} train_policy")
            train_s.append(time.perf_counter() - started)
            policy = trained
    finally:
        actors.release()
    return {"search_s": search_s, "train_s": train_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3, help="Search-then-train cycles per setting.")
    parser.add_argument("--problems", type=int, default=32, help="Problems searched per cycle.")
    parser.add_argument("--train-steps", type=int, default=20, help="Policy optimizer steps per cycle.")
    args = parser.parse_args(argv)
    import os

    import ray

    os.environ.setdefault("WANDB_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    results = {}
    try:
        for colocate in (False, True):
            with tempfile.TemporaryDirectory(prefix="rest-mcts-colocation-") as folder:
                results[colocate] = alternate(colocate, args.cycles, args.problems, args.train_steps, Path(folder))
    finally:
        ray.shutdown()
    print(f"machine: {machine()}")
    header = ["actors", "first search s", "later searches s", "first training s", "later trainings s", "total s"]
    rows = []
    for colocate, label in ((False, "separate (stopped between stages)"), (True, "colocated (up for the run)")):
        r = results[colocate]
        later = max(1, args.cycles - 1)
        rows.append([label, r["search_s"][0], sum(r["search_s"][1:]) / later, r["train_s"][0],
                     sum(r["train_s"][1:]) / later, sum(r["search_s"]) + sum(r["train_s"])])
    print_table(f"{args.cycles} cycles of search ({args.problems} problems, 2 workers) then policy training "
                f"({args.train_steps} steps, 2 ranks)", header, rows)
    total = {colocate: rows[index][-1] for index, colocate in enumerate((False, True))}
    print(f"\ncolocated / separate total seconds: {total[True] / total[False]:.2f}")


if __name__ == "__main__":
    main()
