"""Which step labels are right more often, and at what cost in generated tokens: on one round's searched trees of
a finished run (a synthetic task, whose every step has a true label), the labels each method gives the trees'
nodes, against the true labels.

Labellings: the tree's inferred values (`tree_hard`: a right answer below; `tree_quality`: ReST-MCTS*'s v_k), the
visit-weighted outcome of the tree (`tree_q`, rStar-Math's Q: the share of visits to the terminals below that end
right), and Monte Carlo labels from K completions per node by the policy that searched (`mc_hard@K`, `mc_soft@K`:
Math-Shepherd) and OmegaPRM's binary search over each wrong finished solution (`omega@K`). Each is scored by AUROC
over the nodes it labels and by sibling accuracy (pairs of children of one node, one right and one wrong, ranked
right; a tie counts half). Tokens: the tree labels cost no tokens beyond the search (`search tokens`, given for
scale); the Monte Carlo ones cost their completions.

Usage: python -m experiments.label_quality --run RUN --round K [--problems N] [--completions 1 4] [--out DIR]
       python -m experiments.label_quality --from-json DIR/labels.jsonl   (the table again)
Raw labels: DIR/labels.jsonl (one line per labelling and node); the table: DIR/table.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from lm.data import atomic_write_text, write_jsonl
from rest_mcts.config import ConfigError
from rest_mcts.round_metrics import auroc, node_step_labels
from search.value_inference import infer_process_rewards, unsolved_rewards, value_targets


def tree_labels(task, problem, tree) -> dict[str, dict[int, float]]:
    """Per tree labelling, node id -> target, for every non-root node that labelling covers."""
    rewards = infer_process_rewards(tree, lambda steps: task.is_correct(problem, steps))
    rewards = rewards or unsolved_rewards(tree, terminals_only=False)
    labels: dict[str, dict[int, float]] = {}
    ids = {tree.steps_of(node.node_id): node.node_id for node in tree.nodes[1:]}
    for target in ("hard", "quality"):
        labels[f"tree_{target}"] = {ids[steps]: value for steps, value in value_targets(tree, rewards, target, "all")}
    q: dict[int, float] = {}
    for node in reversed(tree.nodes[1:]):  # children have larger ids: their sums are ready
        if node.is_terminal:
            weight = max(1, node.visit_count)
            q[node.node_id] = (weight * float(task.is_correct(problem, tree.steps_of(node.node_id))), weight)
        below = [q[child] for child in node.children if child in q]
        if below and not node.is_terminal:
            q[node.node_id] = (sum(right for right, _ in below), sum(weight for _, weight in below))
    labels["tree_q"] = {node_id: right / weight for node_id, (right, weight) in q.items()}
    return labels


def ranking(rows: list[dict]) -> dict[str, float]:
    """AUROC of the targets against the true labels, and sibling accuracy over the labelled children of a node."""
    figures = {"nodes": float(len(rows))}
    area = auroc([row["target"] for row in rows], [row["label"] for row in rows])
    if area is not None:
        figures["auroc"] = area
    by_parent: dict[tuple, list[dict]] = {}
    for row in rows:
        by_parent.setdefault((row["problem_id"], tuple(row["steps"][:-1])), []).append(row)
    right_ranked, pairs = 0.0, 0
    for siblings in by_parent.values():
        for good in (row for row in siblings if row["label"]):
            for bad in (row for row in siblings if not row["label"]):
                pairs += 1
                right_ranked += 1.0 if good["target"] > bad["target"] else 0.5 if good["target"] == bad["target"] else 0
    if pairs:
        figures["sibling_accuracy"], figures["sibling_pairs"] = right_ranked / pairs, float(pairs)
    return figures


def table(rows: list[dict], meta: dict) -> str:
    """The labellings side by side, from the raw rows."""
    lines = [f"{meta['problems']} problems of round {meta['round']} of {meta['run']}; search tokens "
             f"{meta['search_tokens']:,}", "",
             "| labelling | nodes labelled | extra tokens | AUROC | sibling accuracy (pairs) |",
             "|---|---|---|---|---|"]
    for name in dict.fromkeys(row["labelling"] for row in rows):
        figures = ranking([row for row in rows if row["labelling"] == name])
        sibling = (f"{figures['sibling_accuracy']:.3f} ({figures['sibling_pairs']:.0f})"
                   if "sibling_accuracy" in figures else "-")
        area = f"{figures['auroc']:.3f}" if "auroc" in figures else "-"
        lines.append(f"| {name} | {figures['nodes']:.0f} | {meta['tokens'].get(name, 0):,} | {area} | {sibling} |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.label_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="A finished iterate run folder on a synthetic task.")
    parser.add_argument("--round", type=int, default=1, help="Whose searched trees (trees.jsonl) to label.")
    parser.add_argument("--problems", type=int, default=0, help="The first N of the round's trees (0: all).")
    parser.add_argument("--completions", type=int, nargs="+", default=[1, 4],
                        help="K of the Monte Carlo labellings (completions per labelled prefix).")
    parser.add_argument("--out", help="Output folder (default: RUN/label_quality_round_KK).")
    parser.add_argument("--from-json", help="Print the table of a labels.jsonl again; nothing is run.")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace):
    """The run's configuration, task, round and trees, every flag checked before anything is written."""
    from rest_mcts.evaluate import load_run
    from rest_mcts.stages.context import Context
    from rest_mcts.stages.search_and_values import searched_trees

    if not args.run:
        raise ConfigError("--run: expected an iterate run folder")
    if args.problems < 0 or any(k < 1 for k in args.completions):
        raise ConfigError(f"--problems {args.problems} --completions {' '.join(map(str, args.completions))}: "
                          "expected 0 or more problems and positive completions")
    config, round_ = load_run(args.run, args.round)
    if not (round_.path / "trees.jsonl").exists():
        raise ConfigError(f"--round {args.round}: {round_.path / 'trees.jsonl'} does not exist (no searched trees)")
    ctx = Context.of(config, Path(args.run))
    if not ctx.task.synthetic:
        raise ConfigError(f"--run {args.run}: task {config.task.name} has no true step labels (a synthetic task has)")
    trees = list(searched_trees(ctx, round_))
    return ctx, round_, trees[: args.problems or len(trees)]


def run(args: argparse.Namespace) -> int:
    import ray

    from rest_mcts.config import ValuesConfig
    from rest_mcts.placement import start_ray
    from rest_mcts.stages.mc_values import Completer, omega_labels, shepherd_labels

    ctx, round_, trees = resolve(args)
    out = Path(args.out or Path(args.run) / f"label_quality_round_{round_.index:02d}")
    rows, tokens = [], {}
    truth = {problem.id: node_step_labels(ctx.task, problem, tree) for problem, tree in trees}

    def add(name: str, problem_id: str, steps: tuple[str, ...], target: float, label: bool) -> None:
        rows.append({"labelling": name, "problem_id": problem_id, "steps": list(steps), "target": target,
                     "label": bool(label)})

    for problem, tree in trees:
        for name, targets in tree_labels(ctx.task, problem, tree).items():
            for node_id, target in targets.items():
                add(name, problem.id, tree.steps_of(node_id), target, truth[problem.id][node_id])
    config = ctx.config
    start_ray(config.cluster.ray_address, config.cluster.dashboard_host)
    try:
        for k in args.completions:
            for target, method in (("mc_soft", shepherd_labels), ("omega", omega_labels)):
                ctx.config = replace(config, values=ValuesConfig(target=target, nodes="all", mc_completions=k))
                completer = Completer(ctx, round_)
                labelled = method(ctx, trees, completer)
                steps_to_problem = {problem.id: problem for problem, _ in trees}
                names = [f"mc_hard@{k}", f"mc_soft@{k}"] if target == "mc_soft" else [f"omega@{k}"]
                for name in names:
                    tokens[name] = completer.tokens
                seen = set()
                for problem_id, steps, value in labelled:
                    if (problem_id, steps) in seen:
                        continue
                    seen.add((problem_id, steps))
                    label = ctx.task.step_labels(steps_to_problem[problem_id], steps)[-1]
                    if target == "omega":
                        add(names[0], problem_id, steps, value, label)
                    else:  # mc_soft's counts give mc_hard too: one set of completions, two labellings
                        add(f"mc_soft@{k}", problem_id, steps, value, label)
                        add(f"mc_hard@{k}", problem_id, steps, float(value > 0), label)
    finally:
        ctx.actors.release()
        ray.shutdown()
    meta = {"run": str(args.run), "round": round_.index, "problems": len(trees), "tokens": tokens,
            "search_tokens": sum(tree.tokens_used for _, tree in trees)}
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "labels.jsonl", [{"meta": meta}] + rows)
    text = table(rows, meta)
    atomic_write_text(out / "table.md", text)
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.from_json:
            lines = [json.loads(line) for line in Path(args.from_json).read_text().splitlines()]
            print(table(lines[1:], lines[0]["meta"]), end="")
            return 0
        return run(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
