"""The search-tree pages (`python -m rest_mcts.show_trees`) as a reader sees them: opened from disk in headless
Chromium with the network refused, read through the rendered DOM (visible text, computed styles, clicks), never
through the HTML source. Skipped where Playwright or the system's chromium-headless-shell is missing; CI has both."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager

import pytest

from experiments.screenshot_tree_page import BROWSER, VIEWPORT, chromium, right_paths, screenshot, showcase
from rest_mcts.config import EvalConfig, RunConfig, TaskConfig
from rest_mcts.flags import save_yaml
from rest_mcts.problems import RunProblems
from rest_mcts.show_trees import main as show_trees
from rest_mcts.tasks import get_task
from search.tree import Tree
from search.value_inference import grade_terminal_nodes

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if shutil.which(BROWSER) is None:
    pytest.skip(f"{BROWSER} is not installed (apt-get install {BROWSER}; .ci/run does)", allow_module_level=True)


def add_step(tree: Tree, parent: int, text: str, terminal: bool = False, pruned: bool = False) -> int:
    """A child whose visits, PRM score and value differ from every other node's, so each figure names its node."""
    node_id = len(tree.nodes)
    child = tree.add_child(parent, text, num_tokens=len(text), prm_score=0.05 + 0.061 * node_id, is_terminal=terminal)
    node = tree.nodes[child]
    node.visit_count, node.value, node.pruned = 20 - node_id, 0.97 - 0.043 * node_id, pruned
    return child


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The pages `show_trees` writes for a round holding three test trees of modchain (whose problems are quick to
    draw), and those trees as stored:
    solved: the reference solution; beside its first step a wrong final step (a leaf) and a wrong step with a wrong
        final step below it (a subtree off the right path, folded when the page opens).
    unsolved: the reference's first step, below it a step that failed its check and a wrong final step.
    chain: the reference solution alone."""
    folder = tmp_path_factory.mktemp("run")
    config = RunConfig(task=TaskConfig(name="modchain", seed_problems=10, train_problems=20, test_problems=4,
                                       ood_problems=2), eval=EvalConfig(dev_problems=2))
    (folder / "config.yaml").write_text(save_yaml(config))
    task = get_task("modchain")
    problems = RunProblems.of(config, task).held_out["test"][:3]
    trees = []
    for shape, problem in zip(("solved", "unsolved", "chain"), problems):
        steps = task.reference_steps(problem)
        tree = Tree.new(problem.id, task.format_prompt(problem))
        tree.nodes[0].visit_count = 21
        if shape == "unsolved":
            first = add_step(tree, 0, steps[0])
            add_step(tree, first, "1+1=<b>3</b>;\n", terminal=True, pruned=True)
            add_step(tree, first, "0000\n", terminal=True)
        else:
            parent = 0
            for index, step in enumerate(steps):
                parent = add_step(tree, parent, step, terminal=index == len(steps) - 1)
        if shape == "solved":
            add_step(tree, 0, "9<&>9\n", terminal=True)
            add_step(tree, add_step(tree, 0, "1+1=2;2\n"), "2222\n", terminal=True)
        grade_terminal_nodes(tree, lambda solution, problem=problem: task.is_correct(problem, solution))
        trees.append(tree)
    (folder / "round_01").mkdir()
    (folder / "round_01" / "eval_test_trees.jsonl").write_text(
        "".join(json.dumps(tree.to_dict()) + "\n" for tree in trees))
    assert show_trees([str(folder), "--round", "1", "--split", "test"]) == 0
    stored = [Tree.from_dict(json.loads(line)) for line in (folder / "round_01" / "eval_test_trees.jsonl").open()]
    return folder, folder / "trees" / "round_01_test", dict(zip(("solved", "unsolved", "chain"), stored))


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@contextmanager
def offline_tab(browser, path):
    """A tab showing the file `path` in an offline context that refuses every request not for a file; yields the
    tab, the URLs it asked for and the script errors it raised."""
    context = browser.new_context(offline=True, viewport=VIEWPORT)
    asked, errors = [], []
    context.on("request", lambda request: asked.append(request.url))
    context.route(lambda url: not url.startswith("file:"), lambda route: route.abort())
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(path.as_uri())
    try:
        yield tab, asked, errors
    finally:
        context.close()


def tree_file(out, tree: Tree):
    return out / f"tree_{tree.problem_id}.html"


def summary(tab, node_id: int):
    return tab.locator(f'[data-node="{node_id}"] > summary')


def test_the_pages_need_nothing_from_the_network_and_raise_no_script_error(browser, pages):
    _, out, trees = pages
    for path in [out / "index.html", *(tree_file(out, tree) for tree in trees.values())]:
        with offline_tab(browser, path) as (tab, asked, errors):
            tab.wait_for_load_state("load")
            assert tab.locator("h1").is_visible()
            assert asked == [path.as_uri()], f"{path.name} asked for more than itself"
            assert errors == []


def test_the_guard_sees_a_page_that_asks_the_network(browser, tmp_path):
    """Without this the test above could pass by seeing nothing."""
    page = tmp_path / "leaky.html"
    page.write_text('<!doctype html><h1>x</h1><img src="https://example.com/a.png">'
                    '<link rel="stylesheet" href="https://cdn.example.com/b.css">')
    with offline_tab(browser, page) as (tab, asked, _):
        tab.wait_for_load_state("load")
        assert {url for url in asked if not url.startswith("file:")} == {"https://example.com/a.png",
                                                                          "https://cdn.example.com/b.css"}


def test_every_node_shows_its_step_visits_prm_score_and_value_from_the_tree(browser, pages):
    _, out, trees = pages
    for tree in trees.values():
        with offline_tab(browser, tree_file(out, tree)) as (tab, _, _):
            tab.evaluate("document.querySelectorAll('details').forEach(node => node.open = true)")
            for node in tree.nodes:
                line = summary(tab, node.node_id)
                assert line.is_visible()
                step = line.locator(".step").inner_text().strip()
                assert step == (node.step_text.strip() if node.node_id else "(question)")
                text = line.inner_text()
                for figure in (f"visits {node.visit_count}", f"PRM {node.prm_score:.3f}", f"value {node.value:.3f}"):
                    assert figure in text, (tree.problem_id, node.node_id, figure, text)


def test_the_highlighted_steps_are_exactly_those_on_a_path_to_a_right_answer(browser, pages):
    _, out, trees = pages
    for shape, tree in trees.items():
        with offline_tab(browser, tree_file(out, tree)) as (tab, _, _):
            plain = tab.locator(".meta .step").evaluate("step => getComputedStyle(step).backgroundColor")
            backgrounds = {node.node_id: summary(tab, node.node_id).locator(".step").evaluate(
                "step => getComputedStyle(step).backgroundColor") for node in tree.nodes}
            highlighted = {node_id for node_id, colour in backgrounds.items() if colour != plain}
            assert highlighted == right_paths(tree), shape
            assert len(set(backgrounds.values()) - {plain}) <= 1, "one highlight colour"
    assert right_paths(trees["unsolved"]) == set() and 0 < len(right_paths(trees["solved"])) < 8


def test_the_chosen_answer_is_outlined_and_marked(browser, pages):
    _, out, trees = pages
    tree = trees["solved"]
    with offline_tab(browser, tree_file(out, tree)) as (tab, _, _):
        marked = tab.locator("summary", has_text="MCTS* answer")
        assert marked.count() == 1 and marked.evaluate("line => getComputedStyle(line).outlineStyle") == "solid"
        chosen = int(marked.locator("xpath=..").get_attribute("data-node"))
        assert tree.nodes[chosen].answer_correct and "right answer" in marked.inner_text()


def test_folding_a_subtree_hides_its_children_and_unfolding_shows_them_again(browser, pages):
    _, out, trees = pages
    tree = trees["solved"]
    on_path = right_paths(tree)
    first_step = tree.nodes[0].children[0]
    below = [node.node_id for node in tree.nodes if first_step in tree.path_to(node.node_id)[:-1]]
    off_path = next(node.node_id for node in tree.nodes if node.children and node.node_id not in on_path)
    [off_child] = tree.nodes[off_path].children
    with offline_tab(browser, tree_file(out, tree)) as (tab, _, _):
        assert all(summary(tab, node_id).is_visible() for node_id in below), "the right path opens unfolded"
        summary(tab, first_step).click()
        assert summary(tab, first_step).is_visible()
        assert not any(summary(tab, node_id).is_visible() for node_id in below)
        assert summary(tab, first_step).locator(".folded").inner_text() == f"▸ {len(below)} nodes folded"
        summary(tab, first_step).click()
        assert all(summary(tab, node_id).is_visible() for node_id in below)
        assert not summary(tab, first_step).locator(".folded").is_visible()

        assert not summary(tab, off_child).is_visible(), "a subtree off the right paths opens folded"
        assert summary(tab, off_path).locator(".folded").inner_text() == "▸ 1 node folded"
        summary(tab, off_path).click()
        assert summary(tab, off_child).is_visible()


def test_clicking_a_column_header_sorts_the_index(browser, pages):
    _, out, trees = pages
    sizes = {tree.problem_id: len(tree.nodes) for tree in trees.values()}
    assert len(set(sizes.values())) == 3
    with offline_tab(browser, out / "index.html") as (tab, _, _):
        def column(name):
            index = tab.locator("th").all_inner_texts().index(name)
            return [row.locator("td").nth(index).inner_text() for row in tab.locator("tbody tr").all()]

        assert column("problem") == sorted(sizes)
        tab.locator("th", has_text="nodes").click()
        assert column("problem") == sorted(sizes, key=sizes.get, reverse=True)
        assert column("nodes") == [str(size) for size in sorted(sizes.values(), reverse=True)]
        tab.locator("th", has_text="nodes").click()
        assert column("problem") == sorted(sizes, key=sizes.get)
        tab.locator("th", has_text="problem").click()
        assert column("problem") == sorted(sizes, reverse=True)
        tab.locator("th", has_text="solved").click()
        assert column("solved (a right answer in the tree)")[-1] == "no"


def test_the_docs_screenshot_is_a_page_with_a_solved_tree_and_a_folded_subtree(browser, pages, tmp_path):
    folder, out, trees = pages
    assert showcase(folder / "round_01" / "eval_test_trees.jsonl") == trees["solved"].problem_id
    picture = tmp_path / "tree-page.png"
    screenshot(browser, tree_file(out, trees["solved"]), picture)
    header = picture.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (1200, 800)
