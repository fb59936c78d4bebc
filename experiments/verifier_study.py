"""`python experiments/verifier_study.py`: verifiers trained on the policy's own samples, compared by Best-of-N in the
GenRM paper's form, and against self-consistency at equal total tokens (the verifier's included).

From one round of an `iterate` run (its policy, PRM and task):
1. `samples_train.jsonl`: `--train-samples` solutions for each of `--train-problems` training problems, each
   labelled by the oracle; from them the verifiers' data (`verification_data`): every solution with its label
   and the task's written check, preference pairs, and the correct solutions (GenRM's unified objective);
2. `verifiers/<name>/`: each trainable verifier, trained from the policy on the trainer ranks;
3. `samples_<split>.jsonl`: held-out solutions in waves (`--waves`); the first wave's N solutions are the
   Best-of-N set, all waves together give self-consistency at more samples;
4. `scores_<split>.jsonl`: every verifier's score of each Best-of-N solution and the tokens it generated;
5. `summary.json`, `table.md` (`tabulate`, also `--table-only`).
Each stage is skipped when its file exists, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lm.data import Problem, atomic_write_text, read_jsonl, write_jsonl
from rest_mcts.config import ConfigError, RunConfig, TaskConfig
from rest_mcts.cotnpot import kept_or_all
from rest_mcts.tasks import Task, get_task, load_task
from rest_mcts.verifier_data import training_data, verification_data

logger = logging.getLogger("rest_mcts")


@dataclass(frozen=True)
class VerifierSpec:
    """One verifier of the study: `kind` is 'judge' (the policy asked the question untrained), 'prm' (the run's
    PRM, min over steps) or a trainable kind (`config.VERIFIER_KINDS`)."""

    name: str
    kind: str
    solution_weight: float = 0.0


def verifier_specs(solution_weight: float) -> list[VerifierSpec]:
    """Every verifier of the GenRM table: LLM-as-a-judge, the PRM, an ORM, SimPO, and GenRM direct and CoT, each
    without and with the unified objective's lambda; and a generative step verifier (GenRM-CoT trained on every
    prefix of the solutions, labelled by the true step labels: `step_examples`), which can score partial solutions
    inside MCTS* (`evaluate --verifier`)."""
    return [
        VerifierSpec("llm_judge", "judge"), VerifierSpec("prm_min", "prm"), VerifierSpec("orm", "orm"),
        VerifierSpec("simpo", "simpo"), VerifierSpec("genrm", "genrm"),
        VerifierSpec("genrm_unified", "genrm", solution_weight), VerifierSpec("genrm_cot", "genrm_cot"),
        VerifierSpec("genrm_cot_unified", "genrm_cot", solution_weight),
        VerifierSpec("genrm_cot_steps", "genrm_cot"),
    ]


# -- the table ---------------------------------------------------------------------------------------


def _auroc(scores: list[float], labels: list[bool]) -> float | None:
    from rest_mcts.round_metrics import auroc

    return auroc(scores, labels)


def _vote_correct(task: Task, problem: Problem, answers: list[str | None], weights: list[float]) -> bool:
    from search.baselines import weighted_vote

    return task.check_answer(weighted_vote(answers, weights), problem.answer)


def split_table(task: Task, problems: dict[str, Problem], samples: list[dict], scores: list[dict],
                rationale_counts: Sequence[int], kept: dict[str, list[bool]] | None = None) -> list[dict]:
    """Rows of one split: pass@N, self-consistency at each wave total, and per verifier (GenRM-CoT per K)
    Best-of-N and weighted vote with tokens per problem (sampling + verifier) and AUROC over all solutions; with
    `kept` (CoTnPoT's verdict on each Best-of-N solution), the same after the filter, prefixed 'cotnpot+'."""
    by_problem: dict[str, list[dict]] = {}
    for row in samples:
        by_problem.setdefault(row["problem_id"], []).append(row)
    ids = sorted(by_problem)
    first = {pid: min(by_problem[pid], key=lambda row: row["wave"]) for pid in ids}
    n = first[ids[0]]["requested"]
    sampling_tokens = sum(first[pid]["tokens"] for pid in ids) / len(ids)
    rows = [{"method": f"pass@{n}", "accuracy": _mean(any(s["correct"] for s in first[pid]["solutions"])
                                                     for pid in ids), "tokens": sampling_tokens}]
    for wave in sorted({row["wave"] for row in samples}):
        waves = {pid: [row for row in by_problem[pid] if row["wave"] <= wave] for pid in ids}
        cumulative = sum(row["requested"] for row in waves[ids[0]])
        correct, tokens = [], []
        for pid in ids:
            answers = [task.extract_answer(s["steps"]) for row in waves[pid] for s in row["solutions"]]
            correct.append(_vote_correct(task, problems[pid], answers, [1.0] * len(answers)))
            tokens.append(sum(row["tokens"] for row in waves[pid]))
        rows.append({"method": f"self_consistency@{cumulative}", "accuracy": _mean(correct),
                     "tokens": _mean(tokens), "samples": cumulative})
    if kept is not None:
        correct = []
        for pid in ids:
            solutions = first[pid]["solutions"]
            answers = [task.extract_answer(solutions[i]["steps"]) for i in kept_or_all(kept[pid])]
            correct.append(_vote_correct(task, problems[pid], answers, [1.0] * len(answers)))
        rows.append({"method": f"cotnpot+self_consistency@{n}", "accuracy": _mean(correct),
                     "tokens": sampling_tokens})
    variants = _verifier_variants(scores, rationale_counts)
    for filtered in ([False, True] if kept is not None else [False]):
        for name, by_id in variants.items():
            rows += _verifier_rows(task, problems, first, ids, n, name, by_id, kept if filtered else None)
    return rows


def _verifier_rows(task: Task, problems: dict[str, Problem], first: dict[str, dict], ids: list[str], n: int,
                   name: str, by_id: dict[str, tuple[list[float], list[int]]], kept: dict[str, list[bool]] | None
                   ) -> list[dict]:
    """Best-of-N and the weighted vote by one verifier over each problem's N solutions (only CoTnPoT's kept ones
    when `kept` is given, all when it keeps none); the verifier's AUROC over every solution it scored."""
    chosen, voted, tokens, all_scores, all_labels = [], [], [], [], []
    for pid in ids:
        solutions = first[pid]["solutions"]
        values, generated = by_id[pid]
        candidates = kept_or_all(kept[pid]) if kept is not None else list(range(len(solutions)))
        answers = [task.extract_answer(s["steps"]) for s in solutions]
        # The verifier alone picks, as in GenRM's Best-of-N: a solution without a readable answer is not set aside
        # first (on modtarget every readable answer is right, so that rule alone would score pass@N).
        best = max(candidates, key=lambda i: (values[i], -i)) if solutions else None
        chosen.append(best is not None and solutions[best]["correct"])
        voted.append(_vote_correct(task, problems[pid], [answers[i] for i in candidates],
                                   [values[i] for i in candidates]))
        tokens.append(first[pid]["tokens"] + sum(generated))
        all_scores += values
        all_labels += [s["correct"] for s in solutions]
    common = {"tokens": _mean(tokens), "auroc": _auroc(all_scores, all_labels)}
    prefix = "cotnpot+" if kept is not None else ""
    return [{"method": f"{prefix}best_of_{n}_{name}", "accuracy": _mean(chosen), **common},
            {"method": f"{prefix}weighted_vote_{name}", "accuracy": _mean(voted), **common}]


def _verifier_variants(scores: list[dict], rationale_counts: Sequence[int]
                       ) -> dict[str, dict[str, tuple[list[float], list[int]]]]:
    """verifier (GenRM-CoT: one per K, '<name>_k<K>') -> problem -> (score of each solution, tokens generated)."""
    variants: dict[str, dict[str, tuple[list[float], list[int]]]] = {}
    for row in scores:
        if "checks" in row:
            for k in rationale_counts:
                checks = [solution[:k] for solution in row["checks"]]
                variants.setdefault(f"{row['verifier']}_k{k}", {})[row["problem_id"]] = (
                    [sum(p for p, _ in c) / len(c) for c in checks], [sum(t for _, t in c) for c in checks])
        else:
            variants.setdefault(row["verifier"], {})[row["problem_id"]] = (row["scores"], row["tokens"])
    return variants


def equal_token_comparison(rows: list[dict]) -> None:
    """Beside each verifier row, self-consistency with the most samples whose tokens fit in the row's tokens."""
    consistency = [row for row in rows if row["method"].startswith("self_consistency@")]
    for row in rows:
        if "auroc" not in row:
            continue
        fitting = [sc for sc in consistency if sc["tokens"] <= row["tokens"] * 1.001]
        if fitting:
            best = max(fitting, key=lambda sc: sc["samples"])
            row["self_consistency_at_equal_tokens"] = {"samples": best["samples"], "accuracy": best["accuracy"],
                                                       "tokens": best["tokens"]}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def tabulate(out: Path, task: Task, problems: dict[str, dict[str, Problem]], rationale_counts: Sequence[int]
             ) -> dict[str, list[dict]]:
    """summary.json and table.md from the study's files in `out`."""
    summary = {}
    for split, split_problems in problems.items():
        samples_path, scores_path = out / f"samples_{split}.jsonl", out / f"scores_{split}.jsonl"
        if not samples_path.exists() or not scores_path.exists():
            continue
        cotnpot_path = out / f"cotnpot_{split}.jsonl"
        kept = ({row["problem_id"]: row["kept"] for row in read_jsonl(cotnpot_path)} if cotnpot_path.exists()
                else None)
        rows = split_table(task, split_problems, list(read_jsonl(samples_path)), list(read_jsonl(scores_path)),
                           rationale_counts, kept)
        equal_token_comparison(rows)
        summary[split] = rows
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "table.md", format_table(summary))
    return summary


def format_table(summary: dict[str, list[dict]]) -> str:
    lines = []
    for split, rows in summary.items():
        lines += [f"### {split}", "", "| method | accuracy | tokens per problem | AUROC | self-consistency at equal "
                  "tokens |", "|---|---|---|---|---|"]
        for row in rows:
            auroc = "" if row.get("auroc") is None else f"{row['auroc']:.3f}"
            equal = row.get("self_consistency_at_equal_tokens")
            equal_text = f"{equal['accuracy']:.3f} ({equal['samples']} samples)" if equal else ""
            lines.append(f"| {row['method']} | {row['accuracy']:.3f} | {row['tokens']:.0f} | {auroc} | {equal_text} |")
        lines.append("")
    return "\n".join(lines)


# -- the stages --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from rest_mcts.flags import add_config_arguments

    parser = argparse.ArgumentParser(prog="python experiments/verifier_study.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="", help="An iterate run folder; its config gives every section.")
    parser.add_argument("--round", type=int, default=None, help="Which round's policy and PRM (default: the last).")
    parser.add_argument("--out", default="", help="Output folder (default: <run>/best_of_n_round_NN).")
    parser.add_argument("--train-problems", type=int, default=600, help="Training problems sampled for the "
                        "verifiers' data (the first of the run's pool).")
    parser.add_argument("--train-samples", type=int, default=16, help="Solutions sampled per training problem.")
    parser.add_argument("--max-pairs", type=int, default=4, help="Preference pairs per training problem.")
    parser.add_argument("--waves", nargs="+", type=int, default=[16, 16, 32, 64], metavar="N",
                        help="Held-out solutions sampled per problem in each wave; the first wave is the Best-of-N "
                             "set (N), the cumulative totals are self-consistency's sample counts.")
    parser.add_argument("--rationales", nargs="+", type=int, default=[1, 4, 16], metavar="K",
                        help="GenRM-CoT's checks per solution to report; the largest is written.")
    parser.add_argument("--verifiers", nargs="+", default=None, metavar="NAME",
                        help="Verifiers to run (default: all of " + ", ".join(s.name for s in verifier_specs(1.0))
                             + ").")
    parser.add_argument("--problems", type=int, default=0, help="Held-out problems per split (default: the run's).")
    parser.add_argument("--splits", nargs="+", default=["test", "ood"], choices=["test", "ood", "dev"],
                        help="Held-out splits (dev: the run's dev problems, the end of its training pool, on which to "
                             "pick a verifier's settings before reading test).")
    parser.add_argument("--no-cotnpot", action="store_true", help="Skip CoTnPoT (each solution's program run in "
                        "the sandbox, disagreeing solutions dropped before the verifiers rank the rest).")
    parser.add_argument("--table-only", action="store_true", help="Recompute summary.json and table.md only (from "
                        "--out's own files when --run is not given).")
    add_config_arguments(parser, top_level=False)
    return parser


@dataclass(frozen=True)
class Study:
    config: RunConfig
    policy: Path
    prm: Path
    out: Path
    specs: list[VerifierSpec]
    task: Task
    train: dict[str, Problem]
    held_out: dict[str, dict[str, Problem]]
    max_pairs: int


def resolve(args: argparse.Namespace) -> Study:
    """Validate every flag before anything is written; errors name the flag."""
    from rest_mcts.evaluate import load_run
    from rest_mcts.flags import config_from_args

    if not args.run:
        raise ConfigError("--run: expected an iterate run folder")
    base, round_ = load_run(args.run, args.round)
    config = config_from_args(args, base)
    for flag, values in {"--waves": args.waves, "--rationales": args.rationales,
                         "--train-problems": [args.train_problems], "--train-samples": [args.train_samples],
                         "--max-pairs": [args.max_pairs]}.items():
        if any(value < 1 for value in values):
            raise ConfigError(f"{flag} {' '.join(map(str, values))}: expected positive integers")
    if args.problems < 0:
        raise ConfigError(f"--problems {args.problems}: expected a positive number (0: the run's split sizes)")
    specs = verifier_specs(config.verifier.solution_weight)
    if args.verifiers:
        known = {spec.name: spec for spec in specs}
        unknown = [name for name in args.verifiers if name not in known]
        if unknown:
            raise ConfigError(f"--verifiers {' '.join(unknown)}: unknown; expected some of {', '.join(known)}")
        specs = [known[name] for name in args.verifiers]
    task = load_task(config.task, str(round_.policy))
    pool = task.problems("train", config.task.train_problems, config.task.data_seed)
    if args.train_problems > len(pool) - config.eval.dev_problems:
        raise ConfigError(f"--train-problems {args.train_problems}: the run's pool holds "
                          f"{len(pool) - config.eval.dev_problems} besides its dev problems")
    held_out = {}
    for split in args.splits:
        if split == "dev":
            if not config.eval.dev_problems:
                raise ConfigError("--splits dev: the run holds no dev problems (eval.dev_problems 0)")
            dev = pool[len(pool) - config.eval.dev_problems:]
            held_out[split] = {p.id: p for p in dev[: args.problems or len(dev)]}
            continue
        count = args.problems or (config.task.test_problems if split == "test" else config.task.ood_problems)
        held_out[split] = {p.id: p for p in task.problems(split, count, config.task.data_seed)}
    if not (args.no_cotnpot or args.table_only):
        from rest_mcts.sandbox import SandboxUnavailable, resolve_isolation

        try:
            resolve_isolation(allow_unisolated=config.sandbox.allow_unisolated)
        except SandboxUnavailable as problem:
            raise ConfigError(f"CoTnPoT runs the solutions' programs in the sandbox: {problem}; or skip it with "
                              "--no-cotnpot") from None
    out = Path(args.out or round_.path.parent / f"best_of_n_round_{round_.index:02d}")
    return Study(config, round_.policy, round_.prm, out, specs, task,
                 {p.id: p for p in pool[: args.train_problems]}, held_out, args.max_pairs)


def sample_waves(pool, problems: Sequence[Problem], waves: Sequence[int], max_depth: int, problems_per_task: int,
                 seed: int, label: str) -> list[dict]:
    """Rows of `SearchWorker.sample` for each wave (its own seed), tagged with the wave and its sample count."""
    from rest_mcts.seeds import wave_seed
    from rest_mcts.workers import shard

    shards = shard(list(problems), problems_per_task, len(pool.workers))
    base, rows = pool.settings, []
    for wave, count in enumerate(waves):
        pool.settings = replace(base, seed=wave_seed(seed, wave))
        for batch in pool.map("sample", shards, count, max_depth, label=f"{label} wave {wave}"):
            rows += [{**row, "wave": wave, "requested": count} for row in batch]
    pool.settings = base
    return rows


def train_verifiers(study: Study, trainers) -> None:
    """Train each trainable verifier of the study that has no checkpoint yet, from the policy."""
    from lm.checkpoints import classifier_from_policy

    config = study.config
    rows = list(read_jsonl(study.out / "samples_train.jsonl"))
    examples, pairs, solutions = verification_data(study.task, study.train, rows, study.max_pairs)
    for spec in study.specs:
        out_dir = study.out / "verifiers" / spec.name
        if spec.kind in ("judge", "prm") or (out_dir / "config.json").exists():
            continue
        start = study.policy
        if spec.kind == "orm":
            start = classifier_from_policy(study.policy, study.out / "verifiers" / "orm_init", seed=config.seed)
        data = training_data(study.task, study.train, examples, pairs, solutions, config.verifier, spec.kind,
                             spec.solution_weight, "prefixes" if spec.name == "genrm_cot_steps" else "solutions")
        spec_train = replace(config.verifier_train, seed=config.seed + config.verifier_train.seed)
        result = trainers.train("verifier", start, data, spec_train, out_dir, f"train verifier {spec.name}")
        logger.info("verifier %s: %d steps, loss %.4f -> %.4f", spec.name, result.steps, result.first_loss,
                    result.last_loss)


def build_verifier(study: Study, spec: VerifierSpec, max_rationales: int, device: str):
    """The scorer of `spec` (`search_models.load_verifier`); GenRM-CoT writes `max_rationales` checks."""
    from rest_mcts.search_models import load_verifier

    path = study.policy if spec.kind == "judge" else study.prm if spec.kind == "prm" else \
        study.out / "verifiers" / spec.name
    settings = replace(study.config.verifier, rationales=max_rationales)
    return load_verifier(str(path), settings, device, seed=study.config.seed, kind=spec.kind)


def score_split(study: Study, split: str, max_rationales: int, device: str) -> None:
    """scores_<split>.jsonl: per verifier and problem, the score of each Best-of-N solution and its tokens
    (GenRM-CoT: each of its checks' p(yes) and tokens). Verifiers already in the file are skipped."""
    from search.types import Prefix

    path = study.out / f"scores_{split}.jsonl"
    done = list(read_jsonl(path)) if path.exists() else []
    scored = {row["verifier"] for row in done}
    first = [row for row in read_jsonl(study.out / f"samples_{split}.jsonl") if row["wave"] == 0]
    problems = study.held_out[split]
    for spec in study.specs:
        if spec.name in scored:
            continue
        verifier = build_verifier(study, spec, max_rationales, device)
        prefixes = [Prefix(study.task.format_prompt(problems[row["problem_id"]]), tuple(s["steps"]))
                    for row in first for s in row["solutions"]]
        if spec.kind == "genrm_cot":  # every check kept: GenRM-CoT at K is the mean of the first K
            checks = iter(verifier.checks(prefixes, max_rationales))
            rows = [{"problem_id": row["problem_id"], "verifier": spec.name,
                     "checks": [next(checks) for _ in row["solutions"]]} for row in first]
        else:
            verdicts = verifier.verify(prefixes)
            values, tokens = iter(verdicts.scores), iter(verdicts.tokens_generated)
            rows = [{"problem_id": row["problem_id"], "verifier": spec.name,
                     "scores": [next(values) for _ in row["solutions"]],
                     "tokens": [next(tokens) for _ in row["solutions"]]} for row in first]
        done += rows
        write_jsonl(path, done)
        logger.info("%s: scored %d solutions with %s", split, len(prefixes), spec.name)


def cotnpot_split(study: Study, split: str) -> None:
    """cotnpot_<split>.jsonl: CoTnPoT's verdict on each Best-of-N solution (`cotnpot.check_solutions`), per problem:
    which solutions it keeps and why it drops the others, and the sandbox protections that did not hold for their
    programs (`sandbox_unisolated`: the run accepted a sandbox without filesystem and network isolation,
    `sandbox.allow_unisolated`)."""
    from rest_mcts.cotnpot import check_solutions

    path = study.out / f"cotnpot_{split}.jsonl"
    if path.exists():
        return
    first = [row for row in read_jsonl(study.out / f"samples_{split}.jsonl") if row["wave"] == 0]
    problems = study.held_out[split]
    checks = iter(check_solutions(study.task, [(problems[row["problem_id"]], s["steps"])
                                               for row in first for s in row["solutions"]],
                                  allow_unisolated=study.config.sandbox.allow_unisolated))
    rows = []
    for row in first:
        mine = [next(checks) for _ in row["solutions"]]
        rows.append({"problem_id": row["problem_id"], "kept": [c.kept for c in mine],
                     "reasons": [c.reason for c in mine],
                     "sandbox_not_enforced": sorted({p for c in mine for p in c.sandbox_not_enforced}),
                     "sandbox_unisolated": any(c.unisolated for c in mine)})
    write_jsonl(path, rows)


def run(args: argparse.Namespace, study: Study) -> dict:
    import ray

    from rest_mcts.actors import Actors
    from rest_mcts.placement import start_ray
    from rest_mcts.search_models import SamplerSettings

    config = study.config
    study.out.mkdir(parents=True, exist_ok=True)
    write_study_meta(study, args.rationales)
    start_ray(config.cluster.ray_address, config.cluster.dashboard_host)
    actors = Actors(config.cluster, "best-of-n")
    try:
        settings = SamplerSettings.from_config(config, str(study.policy), "", config.eval.temperature, config.seed)
        if not (study.out / "samples_train.jsonl").exists():
            pool = actors.search_pool(settings, "best-of-n-sample")
            rows = sample_waves(pool, list(study.train.values()), [args.train_samples], config.search.max_depth,
                                config.cluster.problems_per_task, config.seed + 1, "train")
            write_jsonl(study.out / "samples_train.jsonl", rows)
        if any(spec.kind not in ("judge", "prm") for spec in study.specs):
            train_verifiers(study, actors.trainers("best-of-n-train"))
        for split, problems in study.held_out.items():
            if not (study.out / f"samples_{split}.jsonl").exists():
                pool = actors.search_pool(settings, "best-of-n-sample")
                rows = sample_waves(pool, list(problems.values()), args.waves, config.search.max_depth,
                                    config.cluster.problems_per_task, config.seed + 2, split)
                write_jsonl(study.out / f"samples_{split}.jsonl", rows)
    finally:
        actors.release()
        ray.shutdown()
    import torch

    from lm.build import pick_device

    device = pick_device()
    torch.set_num_threads(max(1, int(config.cluster.search_workers * config.cluster.cpus_per_worker)))
    for split in study.held_out:
        if not args.no_cotnpot:
            cotnpot_split(study, split)
        score_split(study, split, max(args.rationales), device)
    return tabulate(study.out, study.task, study.held_out, args.rationales)


def write_study_meta(study: Study, rationale_counts: Sequence[int]) -> None:
    """study.json: what `table_from_folder` needs to recompute the table without the run (task, problems, K)."""
    config = study.config
    meta = {"task": config.task.name, "task_config": dataclasses.asdict(config.task),
            "data_seed": config.task.data_seed,
            "train_problems": config.task.train_problems, "rationale_counts": list(rationale_counts),
            "held_out": {split: list(problems) for split, problems in study.held_out.items()}}
    atomic_write_text(study.out / "study.json", json.dumps(meta, indent=1))


def table_from_folder(out: Path, rationale_counts: Sequence[int] | None = None) -> dict[str, list[dict]]:
    """summary.json and table.md recomputed from a study folder's own files (study.json names its problems)."""
    meta_path = out / "study.json"
    if not meta_path.exists():
        raise ConfigError(f"--out {out}: no study.json; give --run as well")
    meta = json.loads(meta_path.read_text())
    task = get_task(TaskConfig(**meta.get("task_config", {"name": meta["task"]})))  # data tasks read their files
    held_out = {}
    for split, ids in meta["held_out"].items():
        source = task.problems("train", meta["train_problems"], meta["data_seed"]) if split == "dev" else \
            task.problems(split, len(ids), meta["data_seed"])
        by_id = {problem.id: problem for problem in source}
        held_out[split] = {problem_id: by_id[problem_id] for problem_id in ids}
    return tabulate(out, task, held_out, rationale_counts or meta["rationale_counts"])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = build_parser().parse_args(argv)
    try:
        if args.table_only and not args.run:
            if not args.out:
                raise ConfigError("--table-only: give --out (a study folder) or --run")
            print(format_table(table_from_folder(Path(args.out))))
            return 0
        study = resolve(args)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.table_only:
        write_study_meta(study, args.rationales)
        summary = tabulate(study.out, study.task, study.held_out, args.rationales)
    else:
        summary = run(args, study)
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
