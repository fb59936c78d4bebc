"""Tasks: hand-checked reference solutions, answer checking, prefix step labels and split hygiene."""

from __future__ import annotations

import pytest

from lm.data import PolicyExample, Problem
from rest_mcts.tasks import SPLITS, TASKS, get_task
from rest_mcts.tasks.base import HELD_OUT_POOL, Task
from rest_mcts.tasks.last_letter import LastLetterTask
from rest_mcts.tasks.modchain import ModChainTask, reduce_once
from rest_mcts.tasks.word_sort import WordSortTask

# 3+4 = 7; 7*2 = 14 -> 4; 4-5 = -1 -> 9 (left to right, mod 10; with precedence it would be 6).
# Each step shows the operation it evaluates, then the reduced chain and the record of every value
# so far; the answer is the whole record, 7, 4 and 9.
MODCHAIN = Problem("m", "3+4*2-5", "749")
MODCHAIN_STEPS = ["3+4=7;7*2-5:7\n", "7*2=4;4-5:74\n", "4-5=9;749\n"]
# Last letters of kato, ribu, sel: o, u, l.
LAST_LETTER = Problem("l", "kato ribu sel", "oul")
LAST_LETTER_STEPS = ["ribu sel:o\n", "sel:ou\n", "oul\n"]

SIZES = {"seed": 40, "train": 150, "test": 60, "ood": 60}
SYNTHETIC = sorted(name for name, task_class in TASKS.items() if task_class.synthetic)
"""The built-in generators; the data tasks have tests of their own (tests/test_data_tasks.py)."""


@pytest.fixture(scope="module", params=SYNTHETIC)
def task_splits(request):
    """A task and its four splits at SIZES, seed 0 (drawn once: each seed/train draw rebuilds both held-out pools)."""
    task = get_task(request.param)
    return task, {split: task.problems(split, count, 0) for split, count in SIZES.items()}


# Reference solutions, hand-checked.


def test_modchain_reduces_the_leftmost_operation_mod_10_each_step():
    assert reduce_once("3+4*2-5") == "7*2-5"
    assert ModChainTask().reference_steps(MODCHAIN) == MODCHAIN_STEPS


def test_modchain_subtraction_wraps_around_mod_10():
    assert reduce_once("2-5") == "7"
    assert ModChainTask().reference_steps(Problem("p", "2-5", "7")) == ["2-5=7;7\n"]


def test_modchain_multiplication_keeps_the_last_digit_and_the_rest_of_the_chain():
    # 9*9 = 81 -> 1; 1+3 = 4.
    assert reduce_once("9*9+3") == "1+3"
    assert ModChainTask().reference_steps(Problem("p", "9*9+3", "14")) == ["9*9=1;1+3:1\n", "1+3=4;14\n"]


def test_modchain_answers_are_drawn_with_the_record():
    for problem in ModChainTask().problems("seed", 20, 0):
        values, expression = [], problem.question
        while len(expression) > 1:
            expression = reduce_once(expression)
            values.append(expression[0])
        assert problem.answer == "".join(values)


def test_modchain_questions_alternate_single_digits_and_operations():
    task = ModChainTask()
    for split, count in SIZES.items():
        for problem in task.problems(split, count, 0):
            assert problem.question[0::2].isdigit(), problem
            assert set(problem.question[1::2]) <= set("+-*"), problem


def test_modchain_record_wrong_step_puts_a_wrong_digit_into_the_answer():
    # 7*2 miscomputed as 5: the record keeps the slip, so the outcome check rejects the solution
    # even though the last value (9) is right.
    task = ModChainTask()
    steps = ["3+4=7;7*2-5:7\n", "7*2=5;5-5:75\n", "5-5=9;759\n"]
    assert not task.is_correct(MODCHAIN, steps)
    assert task.step_labels(MODCHAIN, steps) == [True, False, False]


def test_modchain_shown_operation_slip_is_a_wrong_step_even_with_the_right_value():
    # The shown operation is part of the step: "7*3=4" is wrong although the value 4 is right.
    task = ModChainTask()
    steps = ["3+4=7;7*2-5:7\n", "7*3=4;4-5:74\n", "4-5=9;749\n"]
    assert task.is_correct(MODCHAIN, steps)
    assert task.step_labels(MODCHAIN, steps) == [True, False, False]


def test_last_letter_drops_one_word_per_step_and_appends_its_last_letter():
    assert LastLetterTask().reference_steps(LAST_LETTER) == LAST_LETTER_STEPS


def test_last_letter_two_word_question_has_two_steps():
    assert LastLetterTask().reference_steps(Problem("p", "ab cd", "bd")) == ["cd:b\n", "bd\n"]


def test_prompt_is_the_question_followed_by_the_step_delimiter():
    assert ModChainTask().format_prompt(MODCHAIN) == "3+4*2-5\n"
    assert LastLetterTask().format_prompt(LAST_LETTER) == "kato ribu sel\n"


class OpenTask(Task):
    """A task with problems but no checker: no reference solutions, rationales or programs."""

    name = "open"

    def problems(self, split, count, seed):
        return []

    def is_final_step(self, step_text):
        return True

    def extract_answer(self, steps):
        return None


def test_a_task_without_reference_solutions_says_so():
    with pytest.raises(NotImplementedError, match="'open'"):
        OpenTask().reference_steps(MODCHAIN)


def test_a_task_without_rationales_or_programs_says_so():
    with pytest.raises(NotImplementedError, match="'open' has no verification rationales"):
        OpenTask().verification_rationale(Problem("p", "q", "a"), ["a\n"])
    with pytest.raises(NotImplementedError, match="'open' has no chain-of-thought programs"):
        OpenTask().cot_program(Problem("p", "q", "a"), ["a\n"])


# Final steps, answers and correctness.


@pytest.mark.parametrize(
    "step_text, final",
    [("4-5=9;749\n", True), ("2-5=7;7", True), (" 4-5=9;749 \n", True), ("749\n", True),
     ("3+4=7;7*2-5:7\n", False), ("7*2=4;4-5:74\n", False), ("3+4=7;", False), ("4-5=9;74x\n", False),
     ("\n", False), ("", False)],
)
def test_modchain_final_step_is_the_record_alone_after_the_shown_operation(step_text, final):
    assert ModChainTask().is_final_step(step_text) is final


@pytest.mark.parametrize(
    "step_text, final",
    [("oul\n", True), ("oul", True), ("sel:ou\n", False), ("ribu sel:o\n", False), ("o u\n", False),
     ("ou1\n", False), ("\n", False), ("", False)],
)
def test_last_letter_final_step_is_letters_alone(step_text, final):
    assert LastLetterTask().is_final_step(step_text) is final


def test_extract_answer_reads_the_final_step_without_its_delimiter():
    assert ModChainTask().extract_answer(MODCHAIN_STEPS) == "749"
    assert LastLetterTask().extract_answer(LAST_LETTER_STEPS) == "oul"


def test_extract_answer_is_none_for_an_unfinished_or_empty_solution():
    assert ModChainTask().extract_answer(MODCHAIN_STEPS[:2]) is None
    assert ModChainTask().extract_answer([]) is None
    assert LastLetterTask().extract_answer(LAST_LETTER_STEPS[:2]) is None
    assert LastLetterTask().extract_answer([]) is None


def test_check_answer_ignores_surrounding_whitespace_and_rejects_none():
    task = ModChainTask()
    assert task.check_answer("9", "9")
    assert task.check_answer(" 9\n", "9")
    assert not task.check_answer("8", "9")
    assert not task.check_answer(None, "9")


def test_reference_solution_is_correct():
    assert ModChainTask().is_correct(MODCHAIN, MODCHAIN_STEPS)
    assert LastLetterTask().is_correct(LAST_LETTER, LAST_LETTER_STEPS)


def test_wrong_final_answer_is_not_correct():
    assert not ModChainTask().is_correct(MODCHAIN, ["3+4=7;7*2-5:7\n", "7*2=4;4-5:74\n", "4-5=8;748\n"])
    assert not LastLetterTask().is_correct(LAST_LETTER, ["ribu sel:o\n", "sel:ou\n", "oua\n"])


def test_solution_without_a_final_step_is_not_correct():
    assert not ModChainTask().is_correct(MODCHAIN, MODCHAIN_STEPS[:2])
    assert not ModChainTask().is_correct(MODCHAIN, [])
    assert not LastLetterTask().is_correct(LAST_LETTER, LAST_LETTER_STEPS[:2])


def test_right_answer_after_wrong_steps_is_correct_by_outcome():
    # Outcome checking looks at the answer only; step_labels is what catches the bad path.
    steps = ["3+4=7;7*2-5:7\n", "4-5=9;749\n"]
    assert ModChainTask().is_correct(MODCHAIN, steps)
    assert ModChainTask().step_labels(MODCHAIN, steps) == [True, False]


# Step labels: prefix correctness.


def test_step_labels_of_the_reference_solution_are_all_true():
    assert ModChainTask().step_labels(MODCHAIN, MODCHAIN_STEPS) == [True, True, True]
    assert LastLetterTask().step_labels(LAST_LETTER, LAST_LETTER_STEPS) == [True, True, True]


def test_a_wrong_step_makes_that_and_every_later_label_false_even_if_a_later_step_is_right():
    # Step 2 should be 7*2=4;4-5:74; step 3 is the right text again but follows a wrong prefix.
    steps = ["3+4=7;7*2-5:7\n", "7*2=5;4-5:74\n", "4-5=9;749\n"]
    assert ModChainTask().step_labels(MODCHAIN, steps) == [True, False, False]
    assert LastLetterTask().step_labels(LAST_LETTER, ["ribu sel:a\n", "sel:ou\n", "oul\n"]) == [False, False, False]


def test_a_right_answer_reached_by_skipping_steps_is_labelled_wrong():
    assert ModChainTask().step_labels(MODCHAIN, ["4-5=9;749\n"]) == [False]


def test_steps_beyond_the_reference_solution_are_labelled_wrong():
    assert ModChainTask().step_labels(MODCHAIN, MODCHAIN_STEPS + ["4-5=9;749\n"]) == [True, True, True, False]


def test_step_labels_of_no_steps_are_empty():
    assert ModChainTask().step_labels(MODCHAIN, []) == []


def test_a_final_step_ended_at_eos_without_its_delimiter_is_labelled_right():
    # The sampler returns "4-5=9;749" (no newline) when the policy stops with EOS; is_correct accepts
    # it, so the step labels must too.
    steps = ["3+4=7;7*2-5:7\n", "7*2=4;4-5:74\n", "4-5=9;749"]
    assert ModChainTask().is_correct(MODCHAIN, steps)
    assert ModChainTask().step_labels(MODCHAIN, steps) == [True, True, True]


# Splits.


def test_splits_have_the_requested_sizes(task_splits):
    _, splits = task_splits
    assert {split: len(problems) for split, problems in splits.items()} == SIZES


def test_splits_are_the_same_for_the_same_seed_and_differ_for_another(task_splits):
    task, splits = task_splits
    assert task.problems("train", SIZES["train"], 0) == splits["train"]
    assert type(task)().problems("test", SIZES["test"], 0) == splits["test"]
    assert task.problems("test", SIZES["test"], 1) != splits["test"]


def test_ids_and_questions_are_unique_within_each_split(task_splits):
    _, splits = task_splits
    for split, problems in splits.items():
        assert len({p.id for p in problems}) == len(problems), split
        assert len({p.question for p in problems}) == len(problems), split
        assert all(p.id.startswith(f"{split}-") for p in problems), split


def test_ids_are_unique_across_splits(task_splits):
    _, splits = task_splits
    ids = [p.id for problems in splits.values() for p in problems]
    assert len(set(ids)) == len(ids)


def test_no_held_out_question_of_the_whole_pool_appears_in_train_or_seed(task_splits):
    task, splits = task_splits
    held_out = {p.question for split in ("test", "ood") for p in task.problems(split, HELD_OUT_POOL, 0)}
    trained = {p.question for split in ("train", "seed") for p in splits[split]}
    assert not held_out & trained


def test_a_smaller_held_out_split_is_a_prefix_of_the_larger_one(task_splits):
    task, splits = task_splits
    assert task.problems("test", 10, 0) == splits["test"][:10]


def test_every_answer_is_the_end_of_its_reference_solution(task_splits):
    task, splits = task_splits
    for problems in splits.values():
        for problem in problems:
            steps = task.reference_steps(problem)
            assert task.is_correct(problem, steps), problem
            assert task.step_labels(problem, steps) == [True] * len(steps)


def test_modchain_question_lengths_follow_the_operation_ranges():
    # k operations make a question of 2k+1 characters: seed 1-6 ops -> 3-13, train/test 4-6 -> 9-13, ood 7-8 -> 15-17.
    task = ModChainTask()
    lengths = {split: {len(p.question) for p in task.problems(split, count, 0)} for split, count in SIZES.items()}
    assert lengths["seed"] <= {3, 5, 7, 9, 11, 13}
    assert lengths["train"] == {9, 11, 13} and lengths["test"] == {9, 11, 13}
    assert lengths["ood"] == {15, 17}
    assert min(lengths["ood"]) > max(lengths["train"] | lengths["test"])


def test_last_letter_word_counts_follow_the_word_ranges():
    # seed 1-5 words, train/test 2-5, ood 6-7.
    task = LastLetterTask()
    words = {split: {len(p.question.split()) for p in task.problems(split, count, 0)} for split, count in SIZES.items()}
    assert words["seed"] <= {1, 2, 3, 4, 5}
    assert words["train"] <= {2, 3, 4, 5} and words["test"] <= {2, 3, 4, 5}
    assert words["ood"] == {6, 7}


def test_seed_splits_are_mostly_short_problems():
    lengths = [len(p.question) // 2 for p in ModChainTask().problems("seed", 400, 0)]
    assert sum(n <= 2 for n in lengths) > sum(n >= 4 for n in lengths) > 0


def test_seed_problems_respect_a_configured_seed_range():
    assert {len(p.question) for p in ModChainTask(seed_ops=(1, 1)).problems("seed", 30, 0)} == {3}
    assert {len(p.question.split()) for p in LastLetterTask(seed_words=(2, 2)).problems("seed", 30, 0)} == {2}


def test_an_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="'dev'"):
        ModChainTask().problems("dev", 5, 0)
    assert "dev" not in SPLITS


def test_a_held_out_split_larger_than_its_pool_is_rejected():
    with pytest.raises(ValueError, match="at most 1000"):
        ModChainTask().problems("ood", HELD_OUT_POOL + 1, 0)


# Registry and seed examples.


def test_get_task_returns_the_registered_task():
    assert isinstance(get_task("modchain"), ModChainTask)
    assert isinstance(get_task("last_letter"), LastLetterTask)
    assert isinstance(get_task("word_sort"), WordSortTask)


def test_get_task_rejects_an_unknown_name_listing_the_known_tasks():
    with pytest.raises(ValueError, match=r"'gsm9k'.*\['game24', 'gsm8k', 'jsonl', 'last_letter', 'math', "
                                         r"'modchain', 'modtarget', 'word_sort'\]"):
        get_task("gsm9k")


@pytest.mark.parametrize("name", SYNTHETIC)
def test_seed_examples_are_the_seed_problems_with_their_prompts_and_reference_steps(name):
    task = get_task(name)
    examples = task.seed_examples(5, 0)
    problems = task.problems("seed", 5, 0)
    assert len(examples) == 5
    for example, problem in zip(examples, problems):
        assert isinstance(example, PolicyExample)
        assert example.problem_id == problem.id
        assert example.prompt == task.format_prompt(problem)
        assert example.steps == tuple(task.reference_steps(problem))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_only_modtarget_has_a_step_check_a_difficulty_and_its_own_curriculum(name):
    task = get_task(name)
    problem = Problem("p", "3?4?2?5=5", "3?4?2?5=5")
    if name == "modtarget":
        assert task.has_step_check and task.difficulty(problem) == 3 and task.default_curriculum_start == 3
    else:
        assert not task.has_step_check and task.check_step("Q\n", ["a step\n"]) is None
        assert task.difficulty(problem) is None and task.default_curriculum_start == 0
