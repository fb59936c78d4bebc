"""A PNG of one search-tree page (`python -m rest_mcts.show_trees`) as headless Chromium draws it: the picture in
docs/metrics.md. The browser is the system's (Debian's chromium-headless-shell, driven by Playwright), as in
tests/test_tree_page_browser.py, which shares `chromium()` and `screenshot()`.

Command line: python -m experiments.screenshot_tree_page RUN --round K [--split test] [--problem ID]
    [--out docs/images/tree-page.png]
   (default problem: the first tree, by id, that holds a right answer and a folded subtree)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lm.data import read_appended_jsonl
from rest_mcts.show_trees import SPLITS, load_views, trees_file, write_pages
from rest_mcts.tree_pages import file_name
from search.tree import Tree

BROWSER = "chromium-headless-shell"
VIEWPORT = {"width": 1200, "height": 800}


@contextmanager
def chromium() -> Iterator:
    """A Playwright `Browser` on the system's headless Chromium (no sandbox: CI runs as root)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which(BROWSER)
    if executable is None:
        raise FileNotFoundError(f"{BROWSER} is not installed (apt-get install {BROWSER})")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def right_paths(tree: Tree) -> set[int]:
    """Ids of the nodes on a path from the root to a terminal node graded right."""
    return {node_id for terminal in tree.terminal_nodes() if tree.nodes[terminal].answer_correct
            for node_id in tree.path_to(terminal)}


def showcase(trees_path: Path) -> str:
    """The first problem (by id) whose tree holds a right answer and a subtree off the right paths, which the page
    shows folded."""
    for record in sorted(read_appended_jsonl(trees_path), key=lambda record: record["problem_id"]):
        tree = Tree.from_dict(record)
        on_path = right_paths(tree)
        if on_path and any(node.children and node.node_id not in on_path for node in tree.nodes):
            return tree.problem_id
    raise ValueError(f"{trees_path}: no tree holds both a right answer and a folded subtree; name one with --problem")


def screenshot(browser, page: Path, out: Path) -> None:
    """Draw the HTML file `page` at VIEWPORT (the top of the page, as a reader first sees it) into the PNG `out`,
    in a new tab of the Playwright `browser`."""
    tab = browser.new_page(viewport=VIEWPORT)
    try:
        tab.goto(page.resolve().as_uri())
        out.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(out))
    finally:
        tab.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.screenshot_tree_page",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="An iterate run folder (runs/<experiment>).")
    parser.add_argument("--round", type=int, required=True, dest="round_index", help="Which round.")
    parser.add_argument("--split", choices=SPLITS, default="test", help="Whose trees (as in show_trees).")
    parser.add_argument("--problem", default=None, help="Which tree (default: see above).")
    parser.add_argument("--out", type=Path, default=Path("docs/images/tree-page.png"), help="The PNG to write.")
    args = parser.parse_args(argv)
    problem = args.problem or showcase(trees_file(args.run, args.round_index, args.split))
    [view] = load_views(args.run, args.round_index, args.split, problem)
    with tempfile.TemporaryDirectory() as folder, chromium() as browser:
        write_pages([view], Path(folder), f"{args.run.name} round {args.round_index}, {args.split} trees")
        screenshot(browser, Path(folder) / file_name(problem), args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB): problem {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
