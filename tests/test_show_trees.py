"""`python -m rest_mcts.show_trees`: a round's trees as self-contained HTML, with the right path highlighted, the
chosen answer marked, the true labels and inferred values shown, every subtree foldable, and an index."""

from __future__ import annotations

import json
import re

import pytest

from rest_mcts.config import EvalConfig, RunConfig, TaskConfig
from rest_mcts.flags import save_yaml
from rest_mcts.problems import RunProblems
from rest_mcts.show_trees import main
from rest_mcts.tasks import get_task
from search.tree import Tree
from search.value_inference import grade_terminal_nodes


@pytest.fixture
def run(tmp_path):
    """A run folder whose round 1 evaluation holds one tree: the reference solution, and beside its first step a
    sibling that ends in a wrong answer."""
    config = RunConfig(task=TaskConfig(seed_problems=10, train_problems=20, test_problems=4, ood_problems=2),
                       eval=EvalConfig(dev_problems=2))
    (tmp_path / "config.yaml").write_text(save_yaml(config))
    task = get_task("modtarget")
    problem = RunProblems.of(config, task).held_out["test"][0]
    steps = task.reference_steps(problem)
    tree = Tree.new(problem.id, task.format_prompt(problem))
    parent = 0
    for index, step in enumerate(steps):
        parent = tree.add_child(parent, step, num_tokens=len(step), prm_score=0.9,
                                is_terminal=index == len(steps) - 1)
        tree.nodes[parent].visit_count, tree.nodes[parent].value = 2, 0.8
    wrong = tree.add_child(0, "9?9=999<&>", num_tokens=5, prm_score=0.2, is_terminal=True)
    tree.nodes[wrong].value = 0.1
    grade_terminal_nodes(tree, lambda solution: task.is_correct(problem, solution))
    round_dir = tmp_path / "round_01"
    round_dir.mkdir()
    (round_dir / "eval_test_trees.jsonl").write_text(json.dumps(tree.to_dict()) + "\n")
    return tmp_path, problem, steps


def test_the_tree_page_shows_the_steps_the_right_path_the_chosen_answer_and_folds(run, capsys):
    folder, problem, steps = run
    assert main([str(folder), "--round", "1", "--split", "test"]) == 0
    out = folder / "trees" / "round_01_test"
    page = (out / f"tree_{problem.id}.html").read_text()
    assert page.count("<details") == len(steps) + 2  # the root, the reference path, the wrong sibling
    for step in steps:
        assert re.search(r'<details class="right-path[^"]*" open data-node="\d+"><summary><span class="step">'
                         + re.escape(step), page), step
    assert "9?9=999&lt;&amp;&gt;" in page and "<&>" not in page  # step texts escaped
    assert page.count("✓ step right") == len(steps) and page.count("✗ step wrong") == 1
    assert 'class="badge ok">MCTS* answer' in page and "right answer" in page and "wrong answer" in page
    assert "inferred r +1, v 1.000" in page and "inferred r -1" in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "a page must need no network"
    index = (out / "index.html").read_text()
    assert f'href="tree_{problem.id}.html"' in index and "<script>" in index and "1 holding a right answer" in index
    assert "1 trees" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--round", "2"], "round 2 has no test trees"),
    (["--round", "1", "--problem", "nope"], "no tree of problem 'nope'"),
    (["--round", "1", "--split", "ood"], "round 1 has no ood trees"),
])
def test_what_is_missing_is_named(run, capsys, args, message):
    folder, _, _ = run
    with pytest.raises(SystemExit) as exit_:
        main([str(folder), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (folder / "trees").exists()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--round", "0"])
    assert "not a run folder" in capsys.readouterr().err


def test_a_sample_of_a_rounds_trees_becomes_pages_for_w_and_b(run):
    from rest_mcts.tree_pages import sample_pages

    folder, problem, steps = run
    task = get_task("modtarget")
    pages = sample_pages(task, [problem], folder / "round_01" / "eval_test_trees.jsonl", 0.1, 3, "run round 1")
    assert list(pages) == [problem.id] and steps[0] in pages[problem.id]
    assert sample_pages(task, [problem], folder / "round_09" / "eval_test_trees.jsonl", 0.1, 3, "none") == {}
    assert sample_pages(task, [problem], folder / "round_01" / "eval_test_trees.jsonl", 0.1, 0, "off") == {}
