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
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lm.data import atomic_write_bytes, atomic_write_text, write_jsonl
from rest_mcts.comparison import Comparison, SummaryRow, compare_mcts, summarize, verifier_comparisons
from rest_mcts.config import ConfigError, RunConfig
from rest_mcts.flags import add_config_arguments, config_from_args, load_yaml, read_saved_config
from rest_mcts.methods import METHODS, SAMPLING_METHODS, VERIFIER_METHODS, MethodCall, MethodRecord, plan_budget
from rest_mcts.preflight import check_backend, check_local_resources, check_wandb
from rest_mcts.rounds import Round, finished_rounds
from rest_mcts.search_models import SamplerSettings, with_verifier
from rest_mcts.seeds import round_sampling_seed
from rest_mcts.tasks import load_task
from rest_mcts.tracking import Tracker, TrackerError, console_logging, redact, wandb_identity

logger = logging.getLogger("rest_mcts")

METHOD_GROUPS = {"greedy": "greedy", **{name: "sampling" for name in SAMPLING_METHODS},
                 "best_of_n_verifier": "sampling", "weighted_vote_verifier": "sampling",
                 "beam_search": "beam_search", "beam_search_verifier": "beam_search_verifier", "tot_bfs": "tot_bfs",
                 "mcts": "mcts",
                 "mcts_leaf_verifier": "mcts_leaf_verifier", "mcts_step_verifier": "mcts_step_verifier"}
MCTS_GROUPS = ("mcts", "mcts_leaf_verifier", "mcts_step_verifier")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rest_mcts.evaluate",
        description="Search methods at equal token budgets: accuracy against generated tokens per problem. "
                    "The run's sections (task, model, search, eval, cluster, logging) come from --run's config.yaml, "
                    "then --config, then flags.",
    )
    source = parser.add_argument_group("checkpoints")
    source.add_argument("--run", default="", help="An iterate experiment folder (e.g. runs/default); its "
                        "config.yaml gives every section, its rounds the checkpoints.")
    source.add_argument("--round", type=int, default=None,
                        help="Which round's checkpoints of --run (default: its last finished round).")
    what = parser.add_argument_group("what to run")
    what.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                      help=f"Methods to run (default: all; those reading a verifier only with --verifier): "
                           f"{', '.join(METHODS)}.")
    what.add_argument("--verifier", default="", metavar="PATH",
                      help="A verifier checkpoint (e.g. from `python experiments/verifier_study.py`), read as "
                           "--verifier.kind says; adds " + ", ".join(VERIFIER_METHODS) + ".")
    what.add_argument("--budget-multiples", nargs="+", type=float, default=[1.0, 2.0, 4.0, 8.0], metavar="M",
                      help="Budgets as multiples of L, greedy decoding's mean tokens per solution on each split, so "
                           "every method gets at least one full attempt (default: 1 2 4 8).")
    what.add_argument("--budgets", nargs="+", type=int, default=None, metavar="TOKENS",
                      help="Budgets in generated tokens per problem instead (the same on every split).")
    what.add_argument("--splits", nargs="+", default=["test", "ood"], choices=["test", "ood"],
                      help="Held-out splits to evaluate on.")
    what.add_argument("--seeds", nargs="+", type=int, default=None,
                      help="Sampling seeds, one pass each (default: with --run, the round evaluation's seed, so "
                           "MCTS* answers as the round's evaluation did where the budget does not bind; else 0).")
    what.add_argument("--problems", type=int, default=0,
                      help="Problems per split (default: task.test_problems and task.ood_problems).")
    what.add_argument("--beam-branch", type=int, default=2, help="M: next steps per kept beam in beam search.")
    what.add_argument("--tot-branch", type=int, default=3, help="k: proposals per state in ToT-BFS.")
    what.add_argument("--plain-mcts", action="store_true",
                      help="MCTS* without greedy-first proposals, without following the first path first and with "
                           "answer margin 0 (default: the round evaluation's MCTS*, with the round's answer margin).")
    where = parser.add_argument_group("output")
    where.add_argument("--out", default="", help="Output folder (default: <run>/evaluate_round_NN, "
                       "else evaluations/<name>).")
    where.add_argument("--name", default="evaluate", help="Name of the evaluation (W&B run, default folder).")
    where.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    add_config_arguments(parser, top_level=False)
    return parser


@dataclass(frozen=True)
class Plan:
    """What one evaluation runs, resolved from the flags and the run."""

    config: RunConfig
    policy: str
    prm: str
    out: Path
    seeds: list[int]
    answer_margin: float
    """MCTS*'s answer margin: the one the round's evaluation picked on its dev problems, else eval.answer_margin
    (0 with --plain-mcts)."""
    problems: dict[str, int]
    """Problems per split."""


def resolve(args: argparse.Namespace) -> Plan:
    """The configuration, checkpoints, seeds, answer margin and output folder; errors name the flag."""
    from lm.build import load_policy, load_prm

    if args.methods is None:
        args.methods = [method for method in METHODS if args.verifier or method not in VERIFIER_METHODS]
    needs_verifier = [method for method in args.methods if method in VERIFIER_METHODS]
    if needs_verifier and not args.verifier:
        raise ConfigError(f"--methods {' '.join(needs_verifier)}: these read a verifier; give --verifier PATH")
    if args.verifier and not (Path(args.verifier) / "config.json").exists():
        raise ConfigError(f"--verifier {args.verifier}: not a Hugging Face checkpoint folder (no config.json)")
    unknown = [method for method in args.methods if method not in METHODS]
    if unknown:
        raise ConfigError(f"--methods {' '.join(unknown)}: unknown method; expected some of {', '.join(METHODS)}")
    bad = [str(budget) for budget in args.budgets or [] if budget < 1]
    if bad:
        raise ConfigError(f"--budgets {' '.join(bad)}: expected positive numbers of tokens per problem")
    bad = [f"{multiple:g}" for multiple in args.budget_multiples if multiple <= 0]
    if bad:
        raise ConfigError(f"--budget-multiples {' '.join(bad)}: expected positive multiples of L")
    if args.problems < 0:
        raise ConfigError(f"--problems {args.problems}: expected a positive number (0: the run's split sizes)")
    for flag, value in {"--beam-branch": args.beam_branch, "--tot-branch": args.tot_branch}.items():
        if value < 1:
            raise ConfigError(f"{flag} {value}: expected a positive integer")
    base, round_ = None, None  # None: the defaults, a data task's split sizes from its files
    if args.run:
        base, round_ = load_run(args.run, args.round)
    config = config_from_args(args, base)
    policy = config.model.policy_model or (str(round_.policy) if round_ else "")
    prm = config.model.prm_model or (str(round_.prm) if round_ else "")
    if not policy or not prm:
        raise ConfigError("give --run (an iterate run folder) or both --policy-model and --prm-model")
    out = Path(args.out or (round_.path.parent / f"evaluate_round_{round_.index:02d}" if round_
                            else Path("evaluations") / args.name))
    task = load_task(config.task, policy)
    problems = {}
    for split in args.splits:
        problems[split] = args.problems or (config.task.test_problems if split == "test" else config.task.ood_problems)
        try:
            drawn = task.problems(split, problems[split], config.task.data_seed)
        except ValueError as error:
            raise ConfigError(f"--problems {problems[split]}: {error}") from error
        if not drawn:  # a data task without this split (GSM8K has no ood problems)
            logger.info("--task %s has no %s split; skipped", config.task.name, split)
            del problems[split]
    load_policy(policy)
    load_prm(prm)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"--out {out}: already holds results; pass --overwrite to replace them")
    if args.seeds is not None:
        seeds = list(args.seeds)
    else:
        seeds = [round_sampling_seed(config.seed, round_.index)] if round_ else [0]
    margin = config.eval.answer_margin
    # Model paths given (by flag or --config) name other checkpoints, even the round's own path.
    given = [getattr(args, f"model.{key}", None) for key in ("policy_model", "prm_model")]
    if args.config:
        given += [(load_yaml(args.config).get("model") or {}).get(key) for key in ("policy_model", "prm_model")]
    if round_ is not None and not any(given):
        # The margin the round's dev problems picked holds for the round's own checkpoints only.
        margin = round_.read_summary().get("dev/mcts/answer_margin", margin)
    return Plan(config, policy, prm, out, seeds, 0.0 if args.plain_mcts else margin, problems)


def load_run(run_dir: str, round_index: int | None) -> tuple[RunConfig, Round]:
    """An iterate run's configuration (its model paths set to the round's checkpoints: the run's were its starting
    points, and its rounds' checkpoints are what is read) and one finished round (default: the last); errors name
    --run and --round."""
    run = Path(run_dir)
    if not (run / "config.yaml").exists():
        raise ConfigError(f"--run {run}: not an iterate run folder (no config.yaml)")
    base = read_saved_config(run / "config.yaml")
    rounds = finished_rounds(run)
    if round_index is None and not rounds:
        raise ConfigError(f"--run {run}: no finished round")
    index = rounds[-1] if round_index is None else round_index
    if index not in rounds:
        raise ConfigError(f"--round {index}: {run} has no finished round {index} (finished: {rounds})")
    round_ = Round.of(run, index)
    return replace(base, model=replace(base.model, policy_model=str(round_.policy), prm_model=str(round_.prm))), round_


def split_budgets(args: argparse.Namespace, greedy_tokens: float) -> list[int]:
    """The budgets of one split in tokens per problem: --budgets as given, else each multiple of L."""
    if args.budgets:
        return list(args.budgets)
    return sorted({max(1, round(multiple * greedy_tokens)) for multiple in args.budget_multiples})


def evaluate(args: argparse.Namespace, plan: Plan, budgets: dict | None = None) -> list[MethodRecord]:
    """Every chosen method on every split, budget and seed; the raw records. `budgets` (if given) receives each
    split's budgets in tokens and L.

    Every method samples at `eval.temperature`; MCTS* is the round evaluation's (`EvalConfig.mcts_params`, greedy
    first, the round's answer margin) unless --plain-mcts. Problems are sharded as the round evaluation shards
    them, and each shard's sampling stream depends only on the seed and the shard, so with the round's seed and a
    budget that does not bind, MCTS* gives the round evaluation's answers.
    """
    from rest_mcts.actors import Actors
    from rest_mcts.workers import shard

    config = plan.config
    task = load_task(config.task, plan.policy)
    plain = args.plain_mcts
    mcts = (config.eval.mcts_params(config.search, first_path_first=False) if plain
            else config.eval.mcts_params(config.search))
    settings = with_verifier(SamplerSettings.from_config(config, plan.policy, plan.prm, config.eval.temperature,
                                                         seed=0), config, args.verifier)
    greedy_first = config.eval.greedy_first and not plain
    actors = Actors(replace(config.cluster, colocate=False), args.name)
    pool = actors.search_pool(settings, "evaluate")
    base = MethodCall(group="greedy", split="", seed=0, plan=None, mcts=mcts, beam_branch=args.beam_branch,
                      tot_branch=args.tot_branch, max_depth=config.search.max_depth, answer_margin=plan.answer_margin)
    groups = sorted({METHOD_GROUPS[method] for method in args.methods} - {"greedy"})
    records: list[MethodRecord] = []
    try:
        for split in plan.problems:
            problems = task.problems(split, plan.problems[split], config.task.data_seed)
            shards = shard(problems, config.cluster.problems_per_task, config.cluster.search_workers)

            def run(call: MethodCall, split: str = split, shards: list = shards) -> list[MethodRecord]:
                # Only MCTS* proposes the argmax step first: the sampling baselines sample all their candidates.
                pool.settings = replace(settings, greedy_first=greedy_first and call.group in MCTS_GROUPS)
                label = f"{split} {call.group} budget {call.plan.budget if call.plan else '-'} seed {call.seed}"
                return [record for batch in pool.map("run_call", shards, call, label=label) for record in batch]

            greedy = run(replace(base, split=split))
            greedy_tokens = sum(record.tokens for record in greedy) / len(greedy)
            logger.info("%s: greedy accuracy %.3f, L = %.1f tokens per solution", split,
                        sum(record.correct for record in greedy) / len(greedy), greedy_tokens)
            records += [record for record in greedy if "greedy" in args.methods]
            split_tokens = split_budgets(args, greedy_tokens)
            if budgets is not None:
                budgets[split] = {"greedy_tokens_per_solution": greedy_tokens, "budgets": split_tokens}
            for seed in plan.seeds:
                for budget in split_tokens:
                    budget_plan = plan_budget(budget, greedy_tokens, args.beam_branch, args.tot_branch)
                    for group in groups:
                        call = replace(base, group=group, split=split, seed=seed, plan=budget_plan)
                        records += [record for record in run(call) if record.method in args.methods]
    finally:
        actors.release()
    return records


def format_comparisons(comparisons: list[Comparison]) -> str:
    lines = ["| split | budget | MCTS* variant | its accuracy | compared with | its accuracy | difference | "
             "95% paired interval |", "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c.split} | {c.budget} | {c.subject} | {c.mcts_accuracy:.3f} | {c.method} | "
                     f"{c.other_accuracy:.3f} | {c.difference:+.3f} | {c.ci_low:+.3f} to {c.ci_high:+.3f} |")
    return "\n".join(lines) + "\n"


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


def write_outputs(out: Path, records: list[MethodRecord], rows: list[SummaryRow], meta: dict,
                  comparisons: list[Comparison] = (), by_verifier: list[Comparison] = ()) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "records.jsonl", records)
    atomic_write_text(out / "summary.json", json.dumps(
        {"meta": meta, "rows": [asdict(row) for row in rows], "mcts_vs_best_other": [asdict(c) for c in comparisons],
         "verifier_mcts_comparisons": [asdict(c) for c in by_verifier]}, indent=2))
    table = format_markdown(rows)
    if comparisons:
        table += "\nMCTS* against the most accurate other method at each budget:\n\n" + format_comparisons(comparisons)
    if by_verifier:
        table += ("\nMCTS* with the verifier against MCTS* with the PRM only, and against the most accurate other "
                  "method:\n\n" + format_comparisons(by_verifier))
    atomic_write_text(out / "table.md", table)
    for split in sorted({row.split for row in rows}):
        plot(rows, split, out / f"accuracy_vs_tokens_{split}.png", f"{meta['task']} {split}: {meta['checkpoints']}")


def main(argv: list[str] | None = None) -> int:
    console_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = resolve(args)
        from rest_mcts.placement import check_ray_address

        check_local_resources(plan.config)
        check_backend(plan.config)
        check_wandb(plan.config)
        check_ray_address(plan.config.cluster.ray_address)
    except (ConfigError, ValueError) as error:
        parser.exit(2, f"error: {redact(str(error))}\n")
    from rest_mcts.placement import start_ray

    config = plan.config
    meta = {"task": config.task.name, "checkpoints": args.run or plan.policy, "policy": plan.policy, "prm": plan.prm,
            "methods": args.methods, "budget_multiples":
            None if args.budgets else args.budget_multiples, "splits": list(plan.problems), "seeds": plan.seeds,
            "problems": plan.problems, "temperature": config.eval.temperature, "beam_branch": args.beam_branch,
            "tot_branch": args.tot_branch, "plain_mcts": args.plain_mcts, "verifier": args.verifier,
            "answer_margin": plan.answer_margin,
            "search": asdict(config.search), "eval": asdict(config.eval)}
    start_ray(config.cluster.ray_address, config.cluster.dashboard_host)
    import ray

    tracker = None
    try:
        try:
            identity = wandb_identity(config, job_type="evaluate")
            tracker = Tracker(config.logging.wandb_project, identity["group"], config.logging.wandb_mode,
                              str(plan.out.parent), meta, name=args.name,
                              init_timeout_s=config.logging.wandb_init_timeout_s, job_type="evaluate",
                              tags=identity["tags"])
        except TrackerError as error:
            parser.exit(2, f"error: {error}\n")
        started = time.time()
        budgets: dict = {}
        records = evaluate(args, plan, budgets)
        meta["budgets"] = budgets
        rows = summarize(records)
        comparisons = compare_mcts(records)
        by_verifier = verifier_comparisons(records)
        if plan.out.exists() and args.overwrite:
            shutil.rmtree(plan.out)
        meta["seconds"] = time.time() - started
        write_outputs(plan.out, records, rows, meta, comparisons, by_verifier)
        tracker.log_rows(rows)
        print("\n" + format_markdown(rows), flush=True)
        if comparisons or by_verifier:
            print(format_comparisons(comparisons + by_verifier), flush=True)
        print(f"results: {plan.out}   total {meta['seconds']:.0f} s", flush=True)
    finally:
        if tracker is not None:
            tracker.finish()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
