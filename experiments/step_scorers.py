"""Step scorers on the same held-out trees: the PRM's values (as the trees hold them) against a verifier's scores of
every node, both measured against the true step labels (synthetic tasks): AUROC over all nodes and sibling
accuracy (over pairs of children of one node, one right and one wrong, the share where the right one scores
higher; the choice MCTS* makes at each expansion).

Usage: python experiments/step_scorers.py --run RUN --round N --verifier PATH [--kind genrm_cot] [--rationales K]
           [--split test] [--out FILE.json]
The trees are the round evaluation's (`round_NN/eval_<split>_trees.jsonl`); the verifier is any checkpoint
`search_models.load_verifier` reads (e.g. `best_of_n`'s `verifiers/genrm_cot_steps`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from lm.data import atomic_write_text, read_jsonl
from rest_mcts.config import ConfigError
from rest_mcts.evaluate import load_run
from rest_mcts.round_metrics import node_step_labels, step_ranking
from rest_mcts.search_models import load_verifier
from rest_mcts.tasks import get_task
from search.tree import Tree


def measure(task, problems, trees, scores_of) -> dict:
    """`round_metrics.step_ranking` of node scores (`scores_of(tree) -> {node_id: score}`) against the true labels,
    with the count of nodes and of right ones."""
    scored = []
    for tree in trees:
        copy = Tree.from_dict(tree.to_dict())
        for node_id, value in scores_of(tree).items():
            copy.nodes[node_id].prm_score = value
        scored.append(copy)
    labels = [label for tree in trees for label in node_step_labels(task, problems[tree.problem_id], tree).values()]
    ranking = step_ranking(task, [problems[tree.problem_id] for tree in trees], scored)
    return {"auroc": ranking.get("auroc"), "sibling_accuracy": ranking.get("sibling_accuracy"),
            "sibling_pairs": int(ranking.get("sibling_pairs", 0)), "nodes": len(labels), "right_nodes": sum(labels)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--round", type=int, default=None)
    parser.add_argument("--verifier", required=True)
    parser.add_argument("--kind", default="genrm_cot")
    parser.add_argument("--rationales", type=int, default=4)
    parser.add_argument("--split", default="test", choices=["test", "ood", "dev"])
    parser.add_argument("--max-trees", type=int, default=0, help="Only the first N trees (0: all).")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    try:
        config, round_ = load_run(args.run, args.round)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = round_.path / f"eval_{args.split}_trees.jsonl"
    if not path.exists() or not (Path(args.verifier) / "config.json").exists():
        print(f"error: need {path} and a checkpoint at --verifier {args.verifier}", file=sys.stderr)
        return 2
    task = get_task(config.task)
    split = "train" if args.split == "dev" else args.split
    count = config.task.train_problems if split == "train" else (
        config.task.test_problems if split == "test" else config.task.ood_problems)
    problems = {p.id: p for p in task.problems(split, count, config.task.data_seed)}
    trees = [Tree.from_dict(record) for record in read_jsonl(path)]
    trees = trees[: args.max_trees] if args.max_trees > 0 else trees
    verifier = load_verifier(args.verifier, replace(config.verifier, rationales=args.rationales), "cpu",
                             seed=config.seed, kind=args.kind)
    nodes = [(tree, node.node_id) for tree in trees for node in tree.nodes[1:]]
    verdicts = verifier.verify([tree.prefix_of(node_id) for tree, node_id in nodes])
    by_tree: dict[int, dict[int, float]] = {}
    for (tree, node_id), value in zip(nodes, verdicts.scores):
        by_tree.setdefault(id(tree), {})[node_id] = value
    result = {
        "trees": str(path), "verifier": args.verifier, "kind": args.kind, "rationales": args.rationales,
        "prm": measure(task, problems, trees, lambda tree: {n.node_id: n.prm_score for n in tree.nodes[1:]}),
        "verifier_scores": measure(task, problems, trees, lambda tree: by_tree[id(tree)]),
        "verifier_tokens_generated_per_node": sum(verdicts.tokens_generated) / max(len(nodes), 1),
    }
    text = json.dumps(result, indent=1)
    if args.out:
        atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
