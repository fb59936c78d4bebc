"""Search trees in the browser: one round's trees as self-contained HTML pages (`rest_mcts.tree_pages`: no network
at view time), one page per tree and a sortable index.

Command line: python -m rest_mcts.show_trees RUN --round K [--split train|dev|test|ood] [--problem ID] [--out DIR]
   (train: the round's search, trees.jsonl; dev/test/ood: the round evaluation's MCTS*, eval_<split>_trees.jsonl)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lm.data import Problem, atomic_write_text, read_appended_jsonl
from rest_mcts.flags import read_saved_config
from rest_mcts.problems import RunProblems
from rest_mcts.tasks import Task, load_task
from rest_mcts.tree_pages import TreeView, file_name, index_page, tree_page, view_of
from search.tree import Tree

SPLITS = ("train", "dev", "test", "ood")


def trees_file(run: Path, round_index: int, split: str) -> Path:
    folder = run / f"round_{round_index:02d}"
    return folder / ("trees.jsonl" if split == "train" else f"eval_{split}_trees.jsonl")


def split_problems(config, task: Task, split: str) -> list[Problem]:
    problems = RunProblems.of(config, task)
    return {"train": problems.train, "dev": problems.dev}.get(split) or problems.held_out.get(split, [])


def answer_margin(run: Path, round_index: int, default: float) -> float:
    """The margin the round's evaluation picked on dev (`dev/mcts/answer_margin`), else the configured one."""
    eval_file = run / f"round_{round_index:02d}" / "eval.json"
    if eval_file.exists():
        return float(json.loads(eval_file.read_text()).get("dev/mcts/answer_margin", default))
    return default


def load_views(run: Path, round_index: int, split: str, problem_id: str | None = None) -> list[TreeView]:
    """The trees of one round and split with what their pages show; ValueError naming what is missing."""
    config_file = run / "config.yaml"
    if not config_file.exists():
        raise ValueError(f"{run}: not a run folder (no config.yaml)")
    path = trees_file(run, round_index, split)
    if not path.exists():
        raise ValueError(f"{path}: no such file (round {round_index} has no {split} trees)")
    config = read_saved_config(config_file)
    task = load_task(config.task, config.model.policy_model or None)
    problems = {problem.id: problem for problem in split_problems(config, task, split)}
    margin = answer_margin(run, round_index, config.eval.answer_margin)
    views = []
    for record in read_appended_jsonl(path):
        tree = Tree.from_dict(record)
        if problem_id is not None and tree.problem_id != problem_id:
            continue
        if tree.problem_id not in problems:
            raise ValueError(f"{path}: problem {tree.problem_id} is not in the {split} split of {config_file}")
        views.append(view_of(tree, problems[tree.problem_id], task, margin))
    if problem_id is not None and not views:
        raise ValueError(f"{path}: no tree of problem {problem_id!r}")
    return sorted(views, key=lambda view: view.tree.problem_id)


def write_pages(views: list[TreeView], out: Path, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for view in views:
        atomic_write_text(out / file_name(view.tree.problem_id),
                          tree_page(view, f"{title}: problem {view.tree.problem_id}"))
    atomic_write_text(out / "index.html", index_page(views, title))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.show_trees", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="An iterate run folder (runs/<experiment>).")
    parser.add_argument("--round", type=int, required=True, dest="round_index", help="Which round.")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="train: the round's search; dev, test, ood: the round evaluation's MCTS* (default test).")
    parser.add_argument("--problem", default=None, help="One problem's tree only.")
    parser.add_argument("--out", type=Path, default=None, help="Output folder (default RUN/trees/round_NN_SPLIT).")
    args = parser.parse_args(argv)
    try:
        views = load_views(args.run, args.round_index, args.split, args.problem)
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    out = args.out or args.run / "trees" / f"round_{args.round_index:02d}_{args.split}"
    write_pages(views, out, f"{args.run.name} round {args.round_index}, {args.split} trees")
    print(f"{len(views)} trees: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
