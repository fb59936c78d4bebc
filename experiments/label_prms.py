"""The PRM each step labelling trains, as a verifier: from the labels `experiments.label_quality` saved on one
round's trees, one PRM per labelling, trained as the round's own PRM is (the same starting checkpoint: the previous
round's PRM, in round 0 the initial one; the same steps, seed and learning rate), each then compared by
`rest_mcts.evaluate` on the run's held-out problems with the round's policy: Best-of-N ranked by the PRM (min and
last step) and MCTS* scored by it, at one equal token budget. Two references: the starting PRM untrained (`start`)
and the run's own round PRM (`run`, trained on the run's value examples).

Usage: python -m experiments.label_prms --labels DIR/labels.jsonl --run RUN [--budget-multiples 4] [--seeds 0 1]
           [--prm-alone]
       python -m experiments.label_prms --from-json DIR/prms.json   (the table again)
The methods score with the PRM and the task's step check, as the framework's MCTS* does; --prm-alone without the
check, which shows the labels' effect where the check would hide it.
Output (next to the labels unless --out): prms/<labelling>/ (checkpoints, trained once for both scorers),
eval/<labelling>/ or eval_prm_alone/<labelling>/ (evaluate's outputs, raw per-problem records included),
prms.json or prms_prm_alone.json (what the table reads) and prms.md or prms_prm_alone.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lm.data import ValueExample, atomic_write_text
from rest_mcts.config import ConfigError

METHODS = ("best_of_n_min", "best_of_n_last", "mcts")
"""What each PRM is compared by: Best-of-N ranked by its lowest and by its last step score, and MCTS* it scores."""


def read_labels(path: Path) -> tuple[dict, dict[str, list[dict]]]:
    """A labels.jsonl's meta line and its rows by labelling, in file order."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or "meta" not in lines[0]:
        raise ConfigError(f"--labels {path}: expected experiments.label_quality's labels.jsonl (a meta line first)")
    by_labelling: dict[str, list[dict]] = {}
    for row in lines[1:]:
        by_labelling.setdefault(row["labelling"], []).append(row)
    return lines[0]["meta"], by_labelling


def value_examples(rows: list[dict], problems: dict) -> list[ValueExample]:
    """One labelling's rows as the PRM's training examples (the round's value_examples.jsonl form)."""
    missing = sorted({row["problem_id"] for row in rows} - problems.keys())
    if missing:
        raise ConfigError(f"labels name problems the run's round did not search: {', '.join(missing[:3])}")
    return [ValueExample(row["problem_id"], problems[row["problem_id"]][0], tuple(row["steps"]), float(row["target"]),
                         bool(row["label"])) for row in rows]


def train_prms(args: argparse.Namespace, out: Path) -> tuple[dict, dict[str, Path], dict[str, int]]:
    """Every labelling's PRM, trained as the round's own train_prm trains it; the checkpoints by name."""
    import ray

    from experiments.label_quality import resolve
    from rest_mcts.placement import start_ray
    from rest_mcts.stages.training import train

    meta, by_labelling = read_labels(Path(args.labels))
    chosen = args.labellings or list(by_labelling)
    unknown = [name for name in chosen if name not in by_labelling]
    if unknown:
        raise ConfigError(f"--labellings {' '.join(unknown)}: not in {args.labels} (has {', '.join(by_labelling)})")
    ctx, round_, trees = resolve(argparse.Namespace(run=args.run, round=meta["round"], problems=meta["problems"],
                                                    completions=[1]))
    problems = {problem.id: (ctx.task.format_prompt(problem), problem) for problem, _ in trees}
    examples = {name: value_examples(by_labelling[name], problems) for name in chosen}  # all checked first
    config = ctx.config
    # as the round's own PRM training: round 0 warm-starts the initial PRM, a later round trains the previous one
    start, steps = ((round_.previous.prm, config.prm_train.max_steps) if round_.index > 0
                    else (round_.path / "init_prm", config.prm_train.warm_start_steps))
    checkpoints = {"start": start, "run": round_.prm}
    counts = {"start": 0, "run": sum(1 for _ in open(round_.path / "value_examples.jsonl", encoding="utf-8"))}
    start_ray(config.cluster.ray_address, config.cluster.dashboard_host)
    try:
        for name in chosen:
            path = out / "prms" / name.replace("@", "_at_")
            if not (path / "config.json").exists():
                train(ctx, round_, "prm", start, examples[name], config.prm_train, steps, out=path)
            checkpoints[name], counts[name] = path, len(examples[name])
    finally:
        ctx.actors.release()
        ray.shutdown()
    return meta, checkpoints, counts


def evaluate(args: argparse.Namespace, meta: dict, name: str, prm: Path, out: Path) -> dict:
    """`rest_mcts.evaluate` of the round's policy with one PRM (its own process: a Ray of its own); its rows."""
    folder = out / ("eval_prm_alone" if args.prm_alone else "eval") / name.replace("@", "_at_")
    if not (folder / "summary.json").exists():
        command = [sys.executable, "-m", "rest_mcts.evaluate", "--run", args.run, "--round", str(meta["round"]),
                   "--prm-model", str(prm), "--methods", *METHODS, "--splits", "test", "--out", str(folder),
                   "--overwrite", "--budget-multiples", *map(str, args.budget_multiples)]
        if args.prm_alone:
            command += ["--search.step_check", "false"]
        if args.seeds:
            command += ["--seeds", *map(str, args.seeds)]
        if args.problems:
            command += ["--problems", str(args.problems)]
        subprocess.run(command, check=True)
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def table(result: dict) -> str:
    """Per labelling: its examples and extra tokens, and each method's accuracy (95% interval) at the budget."""
    meta = result["meta"]
    budgets = sorted({row["budget"] for rows in result["rows"].values() for row in rows})
    scorer = "the PRM alone (no step check)" if result.get("prm_alone") else "the PRM with the step check"
    lines = [f"PRMs trained on the labels of {meta['problems']} problems of round {meta['round']} of {meta['run']} "
             f"(search tokens {meta['search_tokens']:,}); test split, budgets {budgets} tokens per problem; "
             f"scorer: {scorer}", "",
             "| PRM trained on | examples | extra tokens | " + " | ".join(
                 f"{method} @{budget}" for budget in budgets for method in METHODS) + " |",
             "|---|---|---|" + "---|" * (len(budgets) * len(METHODS))]
    for name, rows in result["rows"].items():
        cells = []
        for budget in budgets:
            for method in METHODS:
                row = next((row for row in rows if row["method"] == method and row["budget"] == budget), None)
                cells.append("-" if row is None else
                             f"{row['accuracy']:.3f} ({row['ci_low']:.3f}-{row['ci_high']:.3f})")
        lines.append(f"| {name} | {result['examples'][name]:,} | {meta['tokens'].get(name, 0):,} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.label_prms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", help="experiments.label_quality's labels.jsonl.")
    parser.add_argument("--run", help="The iterate run folder whose round was labelled.")
    parser.add_argument("--labellings", nargs="+", help="Which labellings to train on (default: every one).")
    parser.add_argument("--budget-multiples", type=float, nargs="+", default=[4.0],
                        help="evaluate's budgets as multiples of greedy's tokens per solution.")
    parser.add_argument("--seeds", type=int, nargs="+", help="evaluate's sampling seeds (default: the round's).")
    parser.add_argument("--problems", type=int, default=0, help="Test problems (0: the run's test split).")
    parser.add_argument("--prm-alone", action="store_true",
                        help="Score with the PRM alone, without the task's step check (prms_prm_alone.json).")
    parser.add_argument("--out", help="Output folder (default: the labels' folder).")
    parser.add_argument("--from-json", help="Print the table of a prms.json again; nothing is run.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.from_json:
            print(table(json.loads(Path(args.from_json).read_text(encoding="utf-8"))), end="")
            return 0
        if not args.labels or not args.run:
            raise ConfigError("--labels and --run: expected a labels.jsonl and the run it labelled")
        if any(multiple <= 0 for multiple in args.budget_multiples) or args.problems < 0:
            raise ConfigError("--budget-multiples: expected positive multiples; --problems: 0 or more")
        out = Path(args.out or Path(args.labels).parent)
        meta, checkpoints, counts = train_prms(args, out)
        rows = {name: evaluate(args, meta, name, path, out)["rows"] for name, path in checkpoints.items()}
        result = {"meta": meta, "examples": counts, "rows": rows, "prm_alone": args.prm_alone}
        stem = "prms_prm_alone" if args.prm_alone else "prms"
        atomic_write_text(out / f"{stem}.json", json.dumps(result, indent=1))
        text = table(result)
        atomic_write_text(out / f"{stem}.md", text)
        print(text, end="")
        return 0
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
