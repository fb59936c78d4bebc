"""CoTnPoT: each chain of thought's program run in the sandbox; solutions whose program disagrees are dropped."""

from __future__ import annotations

from rest_mcts.cotnpot import check_solutions, kept_or_all
from rest_mcts.tasks import get_task


def test_right_solutions_are_kept_and_a_changed_last_letter_is_dropped():
    task = get_task("last_letter")
    problems = task.problems("test", 6, seed=0)
    right = [(p, task.reference_steps(p)) for p in problems]
    wrong = []
    for problem, steps in right:
        last = steps[-1].strip()
        changed = last[:-1] + ("z" if last[-1] != "z" else "b")
        wrong.append((problem, steps[:-1] + [changed + "\n"]))
    checks = check_solutions(task, right + wrong)
    assert [c.kept for c in checks] == [True] * 6 + [False] * 6
    assert all(c.reason == "disagrees" for c in checks[6:])
    assert checks[0].program_answer == task.extract_answer(right[0][1])


def test_a_solution_without_an_answer_or_a_program_is_dropped_without_running_anything():
    task = get_task("word_sort")
    problem = task.problems("test", 1, seed=0)[0]
    checks = check_solutions(task, [(problem, ["???\n"]), (problem, [])])
    assert [(c.kept, c.reason) for c in checks] == [(False, "no_answer"), (False, "no_answer")]


def test_the_filter_falls_back_to_every_solution_when_it_keeps_none():
    assert kept_or_all([False, True, True]) == [1, 2]
    assert kept_or_all([False, False]) == [0, 1]
