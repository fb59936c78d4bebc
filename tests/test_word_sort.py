"""The word_sort task: splits, selection-sort reference solutions (words with equal prefixes included), final steps
and answers, step labels of broken solutions, and its hand-checked rationale and program."""

from __future__ import annotations

import contextlib
import io

import pytest

from lm.data import Problem
from lm.tokenizer import DEFAULT_ALPHABET
from rest_mcts.tasks import get_task
from rest_mcts.tasks.base import HELD_OUT_POOL
from rest_mcts.tasks.word_sort import WordSortTask

SIZES = {"seed": 400, "train": 300, "test": 200, "ood": 100}

# ribu sel kato sorted: kato, ribu, sel; one word moves per step.
PROBLEM = Problem("w", "ribu sel kato", "kato ribu sel")
STEPS = ["kato|ribu sel\n", "kato ribu|sel\n", "kato ribu sel\n"]


@pytest.fixture(scope="module")
def splits():
    task = WordSortTask()
    return task, {split: task.problems(split, count, 0) for split, count in SIZES.items()}


def words_of(step_text: str) -> list[str]:
    return step_text.replace("|", " ").split()


# Splits.


def test_word_sort_is_registered():
    assert isinstance(get_task("word_sort"), WordSortTask)


def test_problems_are_the_same_for_the_same_seed_and_differ_for_another(splits):
    task, problems = splits
    for split in ("seed", "test"):
        assert WordSortTask().problems(split, SIZES[split], 0) == problems[split]
        assert task.problems(split, SIZES[split], 1) != problems[split]


def test_no_held_out_question_appears_in_seed_or_train(splits):
    task, problems = splits
    held_out = {p.question for split in ("test", "ood") for p in task.problems(split, HELD_OUT_POOL, 0)}
    assert not held_out & {p.question for split in ("seed", "train") for p in problems[split]}


def test_train_and_test_have_two_to_four_words_and_ood_five_or_six(splits):
    _, problems = splits
    counts = {split: {len(p.question.split()) for p in problems[split]} for split in SIZES}
    assert counts["train"] == counts["test"] == counts["seed"] == {2, 3, 4}
    assert counts["ood"] == {5, 6}


def test_seed_problems_are_mostly_short(splits):
    _, problems = splits
    counts = [len(p.question.split()) for p in problems["seed"]]
    assert counts.count(2) > counts.count(3) > counts.count(4) > 0


def test_the_words_of_a_problem_are_distinct_pseudo_words_and_the_answer_sorts_them(splits):
    _, problems = splits
    for split_problems in problems.values():
        for problem in split_problems:
            words = problem.question.split()
            assert len(set(words)) == len(words) and all(3 <= len(w) <= 5 and w.isalpha() for w in words), problem
            assert problem.answer == " ".join(sorted(words))
            assert set(problem.question + problem.answer) <= set(DEFAULT_ALPHABET)


# Reference solutions.


def test_reference_moves_the_first_word_alphabetically_one_per_step():
    assert WordSortTask().reference_steps(PROBLEM) == STEPS


def test_a_word_sorts_before_every_longer_word_it_begins():
    problem = Problem("p", "bata bat bam ba", "ba bam bat bata")
    assert WordSortTask().reference_steps(problem) == [
        "ba|bata bat bam\n", "ba bam|bata bat\n", "ba bam bat|bata\n", "ba bam bat bata\n"]


def test_reference_solutions_are_correct_and_every_step_keeps_the_words_and_the_sorted_order(splits):
    task, problems = splits
    for split_problems in problems.values():
        for problem in split_problems:
            steps = task.reference_steps(problem)
            assert len(steps) == len(problem.question.split())
            assert task.is_correct(problem, steps) and task.extract_answer(steps) == problem.answer
            for step_text in steps:
                assert sorted(words_of(step_text)) == sorted(problem.question.split()), step_text
                sorted_words, _, words_left = step_text.strip().partition("|")
                assert sorted_words.split() == sorted(sorted_words.split())
                assert all(word < left for word in sorted_words.split() for left in words_left.split())
                assert set(step_text) <= set(DEFAULT_ALPHABET)


# Final steps and answers.


@pytest.mark.parametrize(
    "step_text, final",
    [("kato ribu sel\n", True), ("kato ribu sel", True), (" kato\n", True), ("kato ribu|sel\n", False),
     ("kato|\n", False), ("kato  ribu\n", False), ("kato ribu1\n", False), ("\n", False), ("", False)],
)
def test_the_final_step_is_words_alone(step_text, final):
    assert WordSortTask().is_final_step(step_text) is final


def test_extract_answer_reads_the_final_step_or_gives_none():
    task = WordSortTask()
    assert task.extract_answer(STEPS) == "kato ribu sel"
    assert task.extract_answer(STEPS[:2]) is None
    assert task.extract_answer([]) is None


# Step labels.


def test_step_labels_of_the_reference_are_all_true():
    assert WordSortTask().step_labels(PROBLEM, STEPS) == [True, True, True]


@pytest.mark.parametrize(
    "steps, labels",
    [(["ribu|sel kato\n", "kato ribu|sel\n", "kato ribu sel\n"], [False, False, False]),  # not the first word
     (["kato|ribu sel\n", "kato sel|ribu\n", "kato sel ribu\n"], [True, False, False]),
     (["kato|sel ribu\n", "kato ribu|sel\n", "kato ribu sel\n"], [False, False, False]),  # words left reordered
     (["kato|ribu\n", "kato ribu\n"], [False, False]),  # a word dropped
     (["kato|ribu sel\n", "kato ribu sel\n"], [True, False]),  # a step skipped: right answer, wrong path
     (STEPS + ["kato ribu sel\n"], [True, True, True, False]),
     (["kato ribu sel\n"], [False])],
)
def test_step_labels_of_broken_solutions(steps, labels):
    assert WordSortTask().step_labels(PROBLEM, steps) == labels


def test_a_right_answer_after_a_skipped_step_is_correct_by_outcome_only():
    task = WordSortTask()
    steps = ["kato|ribu sel\n", "kato ribu sel\n"]
    assert task.is_correct(PROBLEM, steps) and task.step_labels(PROBLEM, steps)[-1] is False


# Rationale and program.


@pytest.mark.parametrize(
    "steps, rationale",
    [(STEPS, "kato ok\nribu ok\nsel ok\n"),
     (["kato|ribu sel\n", "kato sel|ribu\n"], "kato ok\nribu no\n"),  # another word moved
     (["kato|ribu sel\n", "kato ribu|sal\n"], "kato ok\nribu left no\n"),
     (["kato|ribu sel\n", "kato rubi|sel\n"], "kato ok\nribu no\n"),
     (["kate kato|ribu sel\n"], "kato sorted no\n"),
     (["kato|ribu sel\n", "kato ribu sel\n"], "kato ok\nribu no\n"),  # a step skipped
     (STEPS + ["sel\n"], "kato ok\nribu ok\nsel ok\nend no\n"),
     (["#\n"], "kato no\n")],
)
def test_rationales(steps, rationale):
    assert WordSortTask().verification_rationale(PROBLEM, steps) == rationale


def test_the_program_takes_the_first_word_of_each_stated_list_itself():
    task = WordSortTask()
    assert task.cot_program(PROBLEM, STEPS) == (
        "word_lists = [['ribu', 'sel', 'kato'], ['ribu', 'sel'], ['sel']]\n"
        "# each step moves the alphabetically first of the words left\n"
        "print(' '.join(min(words) for words in word_lists))\n")
    # sel miscopied as bel among the words left: the next step still moves ribu, the program takes bel.
    steps = ["kato|ribu bel\n", "kato ribu|sel\n", "kato ribu sel\n"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(task.cot_program(PROBLEM, steps), {})
    assert task.is_correct(PROBLEM, steps) and output.getvalue() == "kato bel sel\n"
