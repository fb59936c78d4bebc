"""The data of the verifier trained in the rounds, built from hand-made searched trees (no Ray, no model): which
solutions or prefixes it learns, with which labels and checks, and what each kind's objective reads."""

from __future__ import annotations

import pytest

from rest_mcts.config import VerifierConfig
from rest_mcts.tasks import get_task
from rest_mcts.verifier_data import round_verifier_data
from search.tree import Tree
from search.value_inference import grade_terminal_nodes

TASK = get_task("last_letter")
PROBLEMS = TASK.problems("train", 2, seed=0)
"""'tujef neh' (reference 'neh:f', 'fh') and 'muz fatuv dif' (reference 'fatuv dif:z', 'dif:zv', 'zvf')."""


def searched_tree(problem, solutions: list[list[str]]) -> Tree:
    """A tree holding each solution as a path (shared prefixes once), its last node terminal and graded."""
    tree = Tree.new(problem.id, TASK.format_prompt(problem))
    for steps in solutions:
        node = 0
        for depth, step in enumerate(steps):
            children = {tree.nodes[child].step_text: child for child in tree.nodes[node].children}
            node = children.get(step) or tree.add_child(node, step, is_terminal=depth == len(steps) - 1)
    grade_terminal_nodes(tree, lambda steps: TASK.is_correct(problem, steps))
    return tree


@pytest.fixture
def trees() -> list[Tree]:
    first, second = PROBLEMS
    return [searched_tree(first, [["neh:f\n", "fh\n"], ["neh:f\n", "fx\n"], ["neh:q\n", "qh\n"]]),
            searched_tree(second, [["fatuv dif:z\n", "dif:zz\n", "zzf\n"]])]  # no right solution found


def build(trees, **verifier):
    return round_verifier_data(TASK, {p.id: p for p in PROBLEMS}, trees, VerifierConfig(**verifier), 4)


def test_solutions_are_every_distinct_graded_terminal_with_the_correct_ones_for_genrms_lambda(trees):
    data = build(trees, kind="genrm", solution_weight=0.5)
    assert [(e.problem_id, e.steps, e.correct) for e in data.examples] == [
        (PROBLEMS[0].id, ("neh:f\n", "fh\n"), True), (PROBLEMS[0].id, ("neh:f\n", "fx\n"), False),
        (PROBLEMS[0].id, ("neh:q\n", "qh\n"), False), (PROBLEMS[1].id, ("fatuv dif:z\n", "dif:zz\n", "zzf\n"), False)]
    assert all(e.rationale == "" for e in data.examples)  # a direct verifier reads no check
    assert [(p.chosen, p.rejected) for p in data.pairs] == [(("neh:f\n", "fh\n"), ("neh:f\n", "fx\n"))]
    assert [s.steps for s in data.solutions] == [("neh:f\n", "fh\n")]
    assert data.objective.kind == "genrm" and data.objective.solution_weight == 0.5
    assert data.examples[0].prompt == TASK.format_prompt(PROBLEMS[0])
    assert build(trees, kind="genrm", solution_weight=0.0).solutions == ()  # no lambda: no solutions


def test_genrm_cot_learns_the_tasks_checks_with_verdicts_that_agree_with_them(trees):
    data = build(trees, kind="genrm_cot")
    for example in data.examples:
        problem = PROBLEMS[0] if example.problem_id == PROBLEMS[0].id else PROBLEMS[1]
        assert example.rationale == TASK.verification_rationale(problem, example.steps)
        assert example.correct == all(TASK.step_labels(problem, example.steps))


def test_prefixes_are_every_distinct_prefix_labelled_by_its_true_step_label(trees):
    data = build(trees, kind="genrm_cot", data="prefixes", solution_weight=0.0)
    first = [(e.steps, e.correct) for e in data.examples if e.problem_id == PROBLEMS[0].id]
    assert first == [(("neh:f\n",), True), (("neh:f\n", "fh\n"), True), (("neh:f\n", "fx\n"), False),
                     (("neh:q\n",), False), (("neh:q\n", "qh\n"), False)]
    assert len(data.examples) == len(first) + 3  # the second tree's three prefixes
    assert all(e.rationale for e in data.examples)
    assert [(e.correct, e.rationale) for e in build(trees, kind="genrm", data="prefixes").examples][0] == (True, "")


@pytest.mark.parametrize("kind, beta", [("orm", 2.0), ("simpo", 2.0), ("dpo", 0.1)])
def test_kinds_without_genrms_lambda_get_no_solutions_and_their_own_beta(trees, kind, beta):
    data = build(trees, kind=kind, solution_weight=1.0, simpo_beta=2.0, dpo_beta=0.1)
    assert data.objective.kind == kind and data.objective.solution_weight == 0.0 and data.solutions == ()
    assert len(data.pairs) == 1 and len(data.examples) == 4
    if kind != "orm":
        assert data.objective.preference_beta == beta


def test_trees_without_a_right_and_a_wrong_solution_give_no_pairs(trees):
    from trainers.verifier import check_data

    data = build(trees[1:], kind="simpo")
    assert data.pairs == () and len(data.examples) == 1
    with pytest.raises(ValueError, match="preference pairs"):
        check_data(data)  # train_verifier skips the round on this
    with pytest.raises(ValueError, match="correct solutions"):
        check_data(build(trees[1:], kind="genrm", solution_weight=1.0))
