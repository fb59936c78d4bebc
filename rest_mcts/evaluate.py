"""`python -m rest_mcts.evaluate`: every search method on a task's held-out splits over a sweep of token
budgets, with the checkpoints of any round of an `iterate` run (or any local checkpoints).

Per method and budget it writes accuracy with a 95% bootstrap interval over problems and seeds, mean
tokens per problem and worker seconds per problem (`summary.json`, `table.md`), the raw per-problem
rows (`records.jsonl`), and a plot of accuracy against tokens per problem per split
(`accuracy_vs_tokens_<split>.png`); the same numbers go to a W&B run. Greedy runs first on each split:
its mean tokens per solution, L, sets the size of the other methods at each budget (`plan_budget`).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from rest_mcts.config import ConfigError, RunConfig, SearchConfig, apply_overrides, load_yaml
from rest_mcts.data import atomic_write_bytes, atomic_write_text, write_jsonl
from rest_mcts.evaluation import METHODS, SAMPLING_METHODS, MethodCall, MethodRecord, SummaryRow, plan_budget, summarize

logger = logging.getLogger("rest_mcts")

METHOD_GROUPS = {"greedy": "greedy", **{name: "sampling" for name in SAMPLING_METHODS},
                 "beam_search": "beam_search", "tot_bfs": "tot_bfs", "mcts": "mcts"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rest_mcts.evaluate",
        description="Search methods at equal token budgets: accuracy against generated tokens per problem.",
    )
    source = parser.add_argument_group("checkpoints")
    source.add_argument("--run", default="", help="An iterate experiment folder (e.g. runs/default); its "
                        "config.yaml gives the task and the search settings.")
    source.add_argument("--round", type=int, default=None,
                        help="Which round's checkpoints of --run (default: its last finished round).")
    source.add_argument("--policy-model", default="", help="A policy checkpoint (instead of --run).")
    source.add_argument("--prm-model", default="", help="A PRM checkpoint (instead of --run).")
    source.add_argument("--task", default="", help="Task name (default: the run's task, else modchain).")
    what = parser.add_argument_group("what to run")
    what.add_argument("--methods", nargs="+", default=list(METHODS), metavar="METHOD",
                      help=f"Methods to run (default: all): {', '.join(METHODS)}.")
    what.add_argument("--budgets", nargs="+", type=int, default=[50, 100, 200, 400], metavar="TOKENS",
                      help="Generated tokens per problem, one point of each method per budget.")
    what.add_argument("--splits", nargs="+", default=["test", "ood"], choices=["test", "ood"],
                      help="Held-out splits to evaluate on.")
    what.add_argument("--seeds", nargs="+", type=int, default=[0], help="Sampling seeds (one pass each).")
    what.add_argument("--problems", type=int, default=0,
                      help="Problems per split (default: the run's test_problems and ood_problems).")
    what.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature of every method.")
    what.add_argument("--beam-branch", type=int, default=2, help="M: next steps per kept beam in beam search.")
    what.add_argument("--tot-branch", type=int, default=3, help="k: proposals per state in ToT-BFS.")
    what.add_argument("--mcts-simulations", type=int, default=1000,
                      help="MCTS* simulation cap (the token budget normally binds first).")
    where = parser.add_argument_group("where and how")
    where.add_argument("--out", default="", help="Output folder (default: <run>/evaluate_round_NN, "
                       "else evaluations/<name>).")
    where.add_argument("--name", default="evaluate", help="Name of the evaluation (W&B run, default folder).")
    where.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    where.add_argument("--workers", type=int, default=2, help="Ray search workers.")
    where.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per worker (torch threads).")
    where.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per worker.")
    where.add_argument("--problems-per-task", type=int, default=25, help="Problems per Ray task.")
    where.add_argument("--ray-address", default="", help="An existing Ray cluster (default: start a local one).")
    where.add_argument("--dashboard-host", default="127.0.0.1", help="Interface of a local Ray dashboard.")
    where.add_argument("--wandb-project", default="rest-mcts", help="W&B project.")
    where.add_argument("--wandb-mode", default="", help="online, offline or disabled (default: offline unless "
                       "WANDB_MODE or a W&B login says otherwise).")
    return parser


def resolve(args: argparse.Namespace) -> tuple[RunConfig, str, str, Path]:
    """The run config (task, search settings), policy and PRM paths and output folder; errors name the flag."""
    from rest_mcts.models.build import load_policy, load_prm
    from rest_mcts.tasks import TASKS

    unknown = [method for method in args.methods if method not in METHODS]
    if unknown:
        raise ConfigError(f"--methods {' '.join(unknown)}: unknown method; expected some of {', '.join(METHODS)}")
    bad = [str(budget) for budget in args.budgets if budget < 1]
    if bad:
        raise ConfigError(f"--budgets {' '.join(bad)}: expected positive numbers of tokens per problem")
    if args.problems < 0:
        raise ConfigError(f"--problems {args.problems}: expected a positive number (0: the run's split sizes)")
    positive = {"--workers": args.workers, "--beam-branch": args.beam_branch,
                "--tot-branch": args.tot_branch, "--mcts-simulations": args.mcts_simulations,
                "--problems-per-task": args.problems_per_task}
    for flag, value in positive.items():
        if value < 1:
            raise ConfigError(f"{flag} {value}: expected a positive integer")
    if args.temperature <= 0:
        raise ConfigError(f"--temperature {args.temperature}: expected a positive temperature")
    config = RunConfig()
    if args.run:
        run = Path(args.run)
        if not (run / "config.yaml").exists():
            raise ConfigError(f"--run {run}: not an iterate run folder (no config.yaml)")
        config = apply_overrides(RunConfig(), load_yaml(str(run / "config.yaml")), str(run / "config.yaml"))
        rounds = sorted(int(path.parent.name.split("_")[1]) for path in run.glob("round_*/DONE"))
        if args.round is None and not rounds:
            raise ConfigError(f"--run {run}: no finished round")
        index = rounds[-1] if args.round is None else args.round
        if index not in rounds:
            raise ConfigError(f"--round {index}: {run} has no finished round {index} (finished: {rounds})")
        policy, prm = args.policy_model or str(run / f"round_{index:02d}" / "policy"), args.prm_model or str(
            run / f"round_{index:02d}" / "prm")
        out = Path(args.out or run / f"evaluate_round_{index:02d}")
    else:
        if not args.policy_model or not args.prm_model:
            raise ConfigError("give --run (an iterate run folder) or both --policy-model and --prm-model")
        policy, prm = args.policy_model, args.prm_model
        out = Path(args.out or Path("evaluations") / args.name)
    if args.task:
        if args.task not in TASKS:
            raise ConfigError(f"--task {args.task!r}: unknown task; expected one of {sorted(TASKS)}")
        config = replace(config, task=replace(config.task, name=args.task))
    from rest_mcts.tasks import get_task

    task = get_task(config.task.name)
    for split in args.splits:
        count = args.problems or (config.task.test_problems if split == "test" else config.task.ood_problems)
        try:
            task.problems(split, count, config.task.data_seed)
        except ValueError as error:
            raise ConfigError(f"--problems {count}: {error}") from error
    load_policy(policy)
    load_prm(prm)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"--out {out}: already holds results; pass --overwrite to replace them")
    return config, policy, prm, out


def mcts_params(search: SearchConfig, simulations: int):
    from search.mcts import MCTSParams

    return MCTSParams(branch=search.branch, exploration_constant=search.exploration_constant,
                      unvisited_bonus=search.unvisited_bonus, roll_forward_steps=search.roll_forward_steps,
                      rollout_alpha=search.rollout_alpha, end_gate=search.end_gate, stop_at_end_gate=True,
                      max_depth=search.max_depth, max_simulations=simulations)


def evaluate(args: argparse.Namespace, config: RunConfig, policy: str, prm: str) -> list[MethodRecord]:
    """Every chosen method on every split, budget and seed; the raw records."""
    from rest_mcts.tasks import get_task
    from rest_mcts.workers import SamplerSettings, SearchPool, shard

    task = get_task(config.task.name)
    counts = {"test": config.task.test_problems, "ood": config.task.ood_problems}
    settings = SamplerSettings(policy, prm, task.name, args.temperature, config.search.max_step_tokens, seed=0,
                               decode=config.search.decode, kv_store_mb=config.search.kv_store_mb)
    pool = SearchPool(settings, args.workers, args.cpus_per_worker, args.gpus_per_worker, "evaluate",
                      config.cluster.timeout_s)
    base = MethodCall(group="greedy", split="", seed=0, plan=None,
                      mcts=mcts_params(config.search, args.mcts_simulations), beam_branch=args.beam_branch,
                      tot_branch=args.tot_branch, max_depth=config.search.max_depth)
    groups = sorted({METHOD_GROUPS[method] for method in args.methods} - {"greedy"})
    records: list[MethodRecord] = []
    try:
        for split in args.splits:
            problems = task.problems(split, args.problems or counts[split], config.task.data_seed)
            shards = shard(problems, args.problems_per_task, args.workers)

            def run(call: MethodCall) -> list[MethodRecord]:
                label = f"{split} {call.group} budget {call.plan.budget if call.plan else '-'} seed {call.seed}"
                return [record for batch in pool.map("run_call", shards, call, label=label) for record in batch]

            greedy = run(replace(base, split=split))
            greedy_tokens = sum(record.tokens for record in greedy) / len(greedy)
            logger.info("%s: greedy accuracy %.3f, L = %.1f tokens per solution", split,
                        sum(record.correct for record in greedy) / len(greedy), greedy_tokens)
            records += [record for record in greedy if "greedy" in args.methods]
            for seed in args.seeds:
                for budget in args.budgets:
                    plan = plan_budget(budget, greedy_tokens, args.beam_branch, args.tot_branch)
                    for group in groups:
                        records += [record for record in run(replace(base, group=group, split=split, seed=seed,
                                                                      plan=plan))
                                    if record.method in args.methods]
    finally:
        pool.shutdown()
    return records


def format_markdown(rows: list[SummaryRow]) -> str:
    lines = ["| split | method | budget | accuracy | 95% interval | tokens/problem | s/problem |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        budget = "-" if row.budget == 0 else str(row.budget)
        lines.append(f"| {row.split} | {row.method} | {budget} | {row.accuracy:.3f} | "
                     f"{row.ci_low:.3f}-{row.ci_high:.3f} | {row.tokens_per_problem:.1f} | "
                     f"{row.seconds_per_problem:.3f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[SummaryRow], split: str, path: Path, title: str) -> None:
    """Accuracy against mean tokens per problem, one line per method, intervals as error bars; PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 5))
    colors = plt.get_cmap("tab20").colors
    for index, method in enumerate(METHODS):
        points = sorted((row for row in rows if row.split == split and row.method == method),
                        key=lambda row: row.tokens_per_problem)
        if not points:
            continue
        x = [row.tokens_per_problem for row in points]
        y = [row.accuracy for row in points]
        errors = [[row.accuracy - row.ci_low for row in points], [row.ci_high - row.accuracy for row in points]]
        axes.errorbar(x, y, yerr=errors, marker="*" if method == "greedy" else "os^Dv<>ph"[index % 9],
                      markersize=10 if method == "greedy" else 5, capsize=3, label=method,
                      color=colors[(2 * index) % 20 + (index >= 10)],
                      linestyle="--" if method == "pass_at_n" else "-")
    axes.set_xscale("log")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("generated tokens per problem (mean)")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())


def write_outputs(out: Path, records: list[MethodRecord], rows: list[SummaryRow], meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "records.jsonl", records)
    atomic_write_text(out / "summary.json", json.dumps({"meta": meta, "rows": [asdict(row) for row in rows]},
                                                       indent=2))
    atomic_write_text(out / "table.md", format_markdown(rows))
    for split in sorted({row.split for row in rows}):
        plot(rows, split, out / f"accuracy_vs_tokens_{split}.png", f"{meta['task']} {split}: {meta['checkpoints']}")


def main(argv: list[str] | None = None) -> int:
    from rest_mcts.tracking import console_logging

    console_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config, policy, prm, out = resolve(args)
    except (ConfigError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    from rest_mcts.iterate import start_ray
    from rest_mcts.tracking import Tracker

    meta = {"task": config.task.name, "checkpoints": args.run or policy, "policy": policy, "prm": prm,
            "methods": args.methods, "budgets": args.budgets, "splits": args.splits, "seeds": args.seeds,
            "temperature": args.temperature, "beam_branch": args.beam_branch, "tot_branch": args.tot_branch,
            "mcts_simulations": args.mcts_simulations, "search": asdict(config.search)}
    start_ray(args.ray_address, args.dashboard_host)
    import ray

    tracker = None
    try:
        tracker = Tracker(args.wandb_project, "evaluate", args.wandb_mode, str(out.parent), meta, name=args.name)
        started = time.time()
        records = evaluate(args, config, policy, prm)
        rows = summarize(records)
        if out.exists() and args.overwrite:
            import shutil

            shutil.rmtree(out)
        meta["seconds"] = time.time() - started
        write_outputs(out, records, rows, meta)
        tracker.log_rows(rows)
        print("\n" + format_markdown(rows), flush=True)
        print(f"results: {out}   total {meta['seconds']:.0f} s", flush=True)
    finally:
        if tracker is not None:
            tracker.finish()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
