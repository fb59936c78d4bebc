"""The modtarget task: question parsing, solutions against brute force, splits, the step format, answer checking
and exact prefix labels (reachability computed here independently, by enumeration)."""

from __future__ import annotations

import itertools
import random
import re
import signal

import pytest

from lm.data import Problem
from rest_mcts.tasks import get_task, modtarget
from rest_mcts.tasks.base import HELD_OUT_POOL
from rest_mcts.tasks.modtarget import ModTargetTask, apply_operations, derivation_checks, parse_question, solutions

# Independent arithmetic: left to right, each result reduced mod 10.
OPS = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10, "*": lambda a, b: (a * b) % 10}


def chain_value(digits, operations: str) -> int:
    value = digits[0]
    for operation, digit in zip(operations, digits[1:]):
        value = OPS[operation](value, digit)
    return value


def random_digits(rng: random.Random, low: int, high: int) -> list[int]:
    """A chain of low to high digits 1-9."""
    return [rng.randint(1, 9) for _ in range(rng.randint(low, high))]


def random_operations(rng: random.Random, digits) -> str:
    """One operation drawn for each gap of the chain `digits`."""
    return "".join(rng.choice("+-*") for _ in digits[1:])


def question_of(digits, target: int) -> str:
    return "?".join(map(str, digits)) + f"={target}"


def every_operation_string(count: int) -> list[str]:
    return ["".join(ops) for ops in itertools.product("+-*", repeat=count)]


def still_reachable(digits, target: int, chosen: str) -> bool:
    """Some completion of the operations `chosen` so far reaches `target` (brute force over the rest)."""
    rest = len(digits) - 1 - len(chosen)
    return any(chain_value(digits, chosen + more) == target for more in every_operation_string(rest))


def write_steps(digits, target: int, operations: str) -> list[str]:
    """The documented step form, written here from the module docstring rather than by the task: value '?' digit
    '=', the three values of +, -, * (in that order), then, on a step before the last, the chosen operation, ';',
    the chain left (the new value first, then the digits still to use), '=', target; on the last step (the one
    taking the last digit), '-', the target, '=', each of the three values minus the target mod 10 (in the same
    order), then the chosen operation, and nothing after it. Nothing records the operations chosen before."""
    steps, value = [], digits[0]
    for index, operation in enumerate(operations):
        digit = digits[index + 1]
        values = [OPS[op](value, digit) for op in "+-*"]
        written = "".join(map(str, values))
        if index + 2 == len(digits):
            differences = "".join(str((v - target) % 10) for v in values)
            steps.append(f"{value}?{digit}={written}-{target}={differences}{operation}\n")
        else:
            new_value = OPS[operation](value, digit)
            chain = "?".join(map(str, [new_value, *digits[index + 2:]]))
            steps.append(f"{value}?{digit}={written}{operation};{chain}={target}\n")
            value = new_value
    return steps


def operations_of(texts) -> str:
    """The operations a derivation's (stripped) step texts chose: the character after the three values of each
    step before the last, and the last character of the last step."""
    return "".join(text[7] for text in texts[:-1]) + (texts[-1][-1] if texts else "")


def problem_of(question: str) -> Problem:
    return Problem("p", question, question)


# 3?4?2?5=4: only "+++" and "++-" reach 4 (3+4=7, 7+2=9, 9+5=4 and 9-5=4). After "-" (9) or "*" (2), and after
# "+*" (4) or "+-" (5), no choice reaches 4 any more.
Q4 = "3?4?2?5=4"


# Parsing and arithmetic.


def test_parse_question_reads_the_digits_and_the_target():
    assert parse_question("3?4?2?5=7") == ([3, 4, 2, 5], 7)
    assert parse_question("9?1=0") == ([9, 1], 0)
    assert parse_question(" 3?4=7\n") == ([3, 4], 7)


@pytest.mark.parametrize(
    "question",
    ["3?4?2?5", "3=7", "34=7", "3?4=", "3?4=17", "3?4=7=1", "3?44=7", "3??4=7", "3+4=7", "a?4=7", "3?4=x", "",
     "?3=7"],
)
def test_parse_question_rejects_another_form_naming_the_question(question):
    with pytest.raises(ValueError, match=re.escape(repr(question))):
        parse_question(question)


@pytest.mark.parametrize("question", ["3?²=7", "3?٣=7", "٣?4=7", "3?4=٣"])
def test_parse_question_rejects_a_non_ascii_digit_naming_the_question(question):
    # "²" and "٣" pass str.isdigit; only ASCII digits are digits of a question.
    with pytest.raises(ValueError, match=re.escape(repr(question))):
        parse_question(question)


def test_apply_operations_evaluates_left_to_right_mod_10():
    assert apply_operations([3, 4, 2, 5], "+-*") == 5  # 3+4=7, 7-2=5, 5*5=25 -> 5
    assert apply_operations([2, 5], "-") == 7  # -3 wraps to 7
    assert apply_operations([9, 9, 3], "*+") == 4  # 81 -> 1, 1+3 = 4
    assert apply_operations([6], "") == 6


def test_apply_operations_agrees_with_plain_arithmetic_on_random_chains():
    rng = random.Random(1)
    for _ in range(200):
        digits = random_digits(rng, 2, 7)
        operations = random_operations(rng, digits)
        assert apply_operations(digits, operations) == chain_value(digits, operations)


def test_solutions_are_exactly_the_operation_strings_that_reach_the_target():
    assert sorted(solutions([3, 4, 2, 5], 4)) == sorted(["+++", "++-"])
    assert solutions([3, 4, 2, 5], 7) == []
    rng = random.Random(2)
    for _ in range(60):
        digits = random_digits(rng, 2, 6)
        target = rng.randint(0, 9)
        found = solutions(digits, target)
        expected = {ops for ops in every_operation_string(len(digits) - 1) if chain_value(digits, ops) == target}
        assert set(found) == expected and len(found) == len(expected), (digits, target)
        assert solutions(digits, target) == found  # a fixed order


# Splits. A task with short chains keeps each draw of the 1000-problem held-out pools fast; the default task's
# splits are drawn by tests/test_tasks.py.

SMALL = {"seed_ops": (2, 3), "train_ops": (2, 3), "ood_ops": (4, 4)}
SIZES = {"seed": 60, "train": 120, "test": 60, "ood": 60}


@pytest.fixture(scope="module")
def small_splits():
    task = ModTargetTask(**SMALL)
    return task, {split: task.problems(split, count, 0) for split, count in SIZES.items()}


def test_modtarget_is_registered():
    assert isinstance(get_task("modtarget"), ModTargetTask)


def test_default_operation_counts_per_split():
    task = ModTargetTask()
    assert task.operation_counts == {"seed": (2, 5), "train": (3, 5), "test": (3, 5), "ood": (6, 7)}
    assert task.seed_length_decay == 0.7


def test_default_test_problems_have_three_to_five_operations():
    problems = ModTargetTask().problems("test", 200, 0)
    assert {len(parse_question(p.question)[0]) - 1 for p in problems} == {3, 4, 5}


def test_problems_of_each_split_have_the_operation_counts_of_their_split(small_splits):
    task, splits = small_splits
    for split, problems in splits.items():
        low, high = task.operation_counts[split]
        counts = {len(parse_question(p.question)[0]) - 1 for p in problems}
        assert counts <= set(range(low, high + 1)), split
    assert {len(parse_question(p.question)[0]) - 1 for p in splits["train"]} == {2, 3}
    assert {len(parse_question(p.question)[0]) - 1 for p in splits["ood"]} == {4}


def test_questions_use_digits_one_to_nine_and_the_oracle_answer_is_the_question(small_splits):
    _, splits = small_splits
    for problems in splits.values():
        for problem in problems:
            digits, target = parse_question(problem.question)
            assert 0 not in digits and 0 <= target <= 9, problem
            assert problem.answer == problem.question


@pytest.mark.parametrize("share", [0.15, 0.05])
def test_every_problem_has_a_solution_and_at_most_the_configured_share(share):
    task = ModTargetTask(**SMALL, max_solution_share=share)
    for split in ("seed", "test"):
        for problem in task.problems(split, 40, 0):
            digits, target = parse_question(problem.question)
            count = sum(chain_value(digits, ops) == target for ops in every_operation_string(len(digits) - 1))
            assert 1 <= count <= share * 3 ** (len(digits) - 1), (problem, count)


def test_default_problems_are_rare_targets():
    task = ModTargetTask()
    for problem in task.problems("test", 50, 0):
        digits, target = parse_question(problem.question)
        count = len(solutions(digits, target))
        assert 1 <= count <= task.max_solution_share * 3 ** (len(digits) - 1), problem


def test_an_unsatisfiable_solution_share_is_an_error_not_a_hang():
    # With one operation no target is reached by at most 0.15 of the 3 strings (0.45 < 1): drawing would redraw
    # forever, so the task must refuse the configuration (stopped after 0.5 s if it hangs instead).
    def give_up(signum, frame):
        raise TimeoutError("problems() still drawing after 0.5 s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(ValueError):
            ModTargetTask(train_ops=(1, 1)).problems("test", 1, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_held_out_questions_never_appear_in_seed_or_train(small_splits):
    task, splits = small_splits
    held_out = {p.question for split in ("test", "ood") for p in task.problems(split, HELD_OUT_POOL, 0)}
    trained = {p.question for split in ("seed", "train") for p in splits[split]}
    assert len(held_out) == 2 * HELD_OUT_POOL
    assert not held_out & trained


# Reference solutions and the step format.

# The documented example: 3?4?2?5=5 with "+-*" (3+4=7, 3-4=9, 3*4=2; 7+2=9, 7-2=5, 7*2=4; 5+5=0, 5-5=0, 5*5=5,
# and minus the target 5: 0-5=5, 0-5=5, 5-5=0).
Q5 = "3?4?2?5=5"
S1, S2, S3 = "3?4=792+;7?2?5=5\n", "7?2=954-;5?5=5\n", "5?5=005-5=550*\n"


def test_steps_for_writes_the_documented_steps():
    assert ModTargetTask().steps_for(Q5, "+-*") == [S1, S2, S3]
    # One step: the final one at once (2+5=7, 2-5=7, 2*5=0; minus 7: 0, 0, 3).
    assert ModTargetTask().steps_for("2?5=7", "-") == ["2?5=770-7=003-\n"]
    assert ModTargetTask().steps_for("2?5=7", "*") == ["2?5=770-7=003*\n"]  # a wrong choice, honestly written
    assert ModTargetTask().steps_for("9?9?3=4", "*") == ["9?9=801*;1?3=4\n"]  # a prefix of a solution
    assert ModTargetTask().steps_for(Q5, "") == []


def test_the_documented_example_is_the_independent_writer_s():
    assert write_steps([3, 4, 2, 5], 5, "+-*") == [S1, S2, S3]


def test_the_module_docstring_shows_the_steps_the_task_writes():
    # The docstring's example steps (as written there, without the delimiter) are the task's and the writer's.
    doc = modtarget.__doc__
    assert "`3?4?2?5=5`" in doc
    for step in (S1, S2, S3):
        assert f"`{step.strip()}`" in doc, step
    assert "(3+4=7, 3-4=9, 3*4=2; + chosen)" in doc  # the three values in the order +, -, *
    flat = " ".join(doc.split())  # line breaks read as spaces
    assert "(0-5=5, 0-5=5, 5-5=0; * chosen" in flat  # the differences to the target, in the same order
    assert "`v?d=abc-t=xyz<op>`" in ModTargetTask.is_final_step.__doc__
    # The answer is the operations chosen, and the right answers it names are right.
    assert "(`+-*`)" in flat and "six here: `+-*`, `*--`" in flat
    assert ":+" not in doc  # no record of the operations chosen any more


def test_the_documented_question_has_six_right_answers():
    right = solutions([3, 4, 2, 5], 5)
    assert len(right) == 6 and "+-*" in right and "*--" in right
    assert right == [ops for ops in every_operation_string(3) if chain_value([3, 4, 2, 5], ops) == 5]


def test_steps_for_agrees_with_the_documented_form_on_random_chains():
    task, rng = ModTargetTask(), random.Random(3)
    for _ in range(200):
        digits = random_digits(rng, 2, 7)
        target = rng.randint(0, 9)
        question = question_of(digits, target)
        operations = "".join(rng.choice("+-*") for _ in range(rng.randint(0, len(digits) - 1)))
        assert task.steps_for(question, operations) == write_steps(digits, target, operations)


def test_steps_for_agrees_with_the_documented_form_for_every_operation_string():
    task = ModTargetTask()
    for digits, target in (([3, 4, 2, 5], 5), ([5, 5, 9], 0), ([9, 8, 7, 6, 1], 3)):
        question = question_of(digits, target)
        for operations in every_operation_string(len(digits) - 1):
            assert task.steps_for(question, operations) == write_steps(digits, target, operations)


def test_reference_steps_are_a_correct_solution_with_all_labels_true(small_splits):
    task, splits = small_splits
    for problems in splits.values():
        for problem in problems:
            steps = task.reference_steps(problem)
            digits, target = parse_question(problem.question)
            assert len(steps) == len(digits) - 1, problem
            assert steps == write_steps(digits, target, task.extract_answer(steps)), problem
            assert task.is_correct(problem, steps), problem
            assert task.step_labels(problem, steps) == [True] * len(steps), problem


def test_reference_steps_are_fixed_per_question_and_drawn_among_all_solutions(small_splits):
    task, splits = small_splits
    firsts, others = 0, 0
    for problem in splits["train"]:
        steps = task.reference_steps(problem)
        assert ModTargetTask().reference_steps(Problem("other-id", problem.question, problem.answer)) == steps
        digits, target = parse_question(problem.question)
        answer = task.extract_answer(steps)
        every = solutions(digits, target)
        assert answer in every
        if len(every) > 1:
            firsts += answer == every[0]
            others += answer != every[0]
    assert firsts and others  # not always the first solution in enumeration order


def test_reference_steps_do_not_depend_on_the_process():
    # Drawn from a generator seeded by the question text, so every process (any PYTHONHASHSEED) gets these steps.
    task = ModTargetTask()
    assert task.reference_steps(problem_of("3?4?2?5=9")) == [
        "3?4=792+;7?2?5=9\n", "7?2=954*;4?5=9\n", "4?5=990-9=001+\n"]
    assert task.reference_steps(problem_of("3?4?2?5=0")) == [
        "3?4=792+;7?2?5=0\n", "7?2=954-;5?5=0\n", "5?5=005-0=005-\n"]


def test_a_right_solution_chooses_the_operation_whose_difference_is_zero():
    # The last step ends on the operation chosen, with nothing after it; the solution is right exactly when the
    # difference written for that operation is 0. The target never stands after the choice.
    task, rng = ModTargetTask(), random.Random(11)
    cases = [([3, 4, 2, 5], 5), ([3, 4, 2, 5], 4)] + [(random_digits(rng, 2, 5), rng.randint(0, 9)) for _ in range(40)]
    for digits, target in cases:
        question = question_of(digits, target)
        for operations in every_operation_string(len(digits) - 1):
            final = task.steps_for(question, operations)[-1].strip()
            assert final[-1] == operations[-1] and final[-5:-4] == "=", final
            difference = final[-4:-1]["+-*".index(operations[-1])]
            assert (difference == "0") == (operations in solutions(digits, target)), (question, operations)


# Final steps and answers.


@pytest.mark.parametrize(
    "step_text, final",
    [(S3, True), (S3.strip(), True), (" 2?5=770-7=003- \n", True), ("2?5=770-7=003-", True),
     ("5?5=123-5=678*\n", True),  # the form only: wrong values are derivation_checks' business
     ("5?5=005-5=999*\n", True), ("5?5=005-7=550*\n", True),  # and so are wrong differences or targets
     ("0?0=000-0=000+\n", True), ("9?9=801-9=012-\n", True),
     (S1, False), (S2, False), ("7?2=954-;5?5?5?5=5\n", False),  # a step before the last
     # The former last form, a lone value after ';': no step of any kind any more.
     ("5?5=005*;5=5\n", False), ("2?5=770-;7=7\n", False), ("0?0=000+;0=0\n", False),
     # The '-t=' part missing or malformed.
     ("5?5=005550*\n", False), ("5?5=005=550*\n", False), ("5?5=005-550*\n", False), ("5?5=005-=550*\n", False),
     ("5?5=005-5550*\n", False), ("5?5=005-55=550*\n", False), ("5?5=005+5=550*\n", False),
     ("5?5=005*5=550*\n", False), ("5?5=005-5-550*\n", False), ("5?5=005;5=550*\n", False),
     # Something written after the chosen operation.
     ("5?5=005-5=550*;5=5\n", False), ("5?5=005-5=550*5\n", False), ("5?5=005-5=550*;\n", False),
     ("5?5=005-5=550*=5\n", False), ("5?5=005-5=550**\n", False), ("5?5=005-5=550*:+-*\n", False),
     ("5?5=005-5=550*:\n", False), ("5?5=005-5=550* 5\n", False),
     # No operation, or one in the wrong place or not an operation.
     ("5?5=005-5=550\n", False), ("5?5=005*-5=550\n", False), ("5?5=005-5=550x\n", False),
     ("5?5=005-5=550 *\n", False), ("5?5=005 -5=550*\n", False), ("5?5=005-5 =550*\n", False),
     # Too few or too many values or differences.
     ("5?5=05-5=550*\n", False), ("5?5=0055-5=550*\n", False), ("5?5=005-5=55*\n", False),
     ("5?5=005-5=5500*\n", False),
     # The left side.
     ("5?55=005-5=550*\n", False), ("55?5=005-5=550*\n", False), ("5*5=005-5=550*\n", False),
     ("?5=005-5=550*\n", False),
     ("5?5=005-5=550*\n5?5=005-5=550*\n", False),  # two lines
     ("5?5=005-٥=550*\n", False), ("5?5=00٥-5=550*\n", False), ("5?5=005-5=55٠*\n", False),  # ASCII digits only
     ("²?5=005-5=550*\n", False),
     ("5*5=5;+-*\n", False), ("+-*\n", False), ("+-\n", False),  # older final forms
     ("\n", False), ("", False)],
)
def test_final_step_is_a_step_with_the_differences_to_the_target(step_text, final):
    assert ModTargetTask().is_final_step(step_text) is final


def test_only_the_last_step_of_a_written_solution_is_final():
    task, rng = ModTargetTask(), random.Random(5)
    for _ in range(100):
        digits = random_digits(rng, 2, 7)
        operations = random_operations(rng, digits)
        steps = write_steps(digits, rng.randint(0, 9), operations)
        assert [task.is_final_step(step) for step in steps] == [False] * (len(steps) - 1) + [True]


def test_extract_answer_reads_the_operations_of_the_final_step():
    task = ModTargetTask()
    steps = task.steps_for(Q5, "+-*")
    assert task.extract_answer(steps) == "+-*"
    assert task.extract_answer(steps[:2]) is None
    assert task.extract_answer([]) is None
    ended_at_eos = task.steps_for(Q5, "++-")
    ended_at_eos[-1] = ended_at_eos[-1].rstrip("\n")
    assert task.extract_answer(ended_at_eos) == "++-"  # no delimiter after the final step
    assert task.extract_answer([step.strip() for step in steps]) == "+-*"
    assert task.extract_answer([" " + step for step in steps]) == "+-*"
    assert task.extract_answer(["2?5=770-7=003-"]) == "-"  # a one-step derivation
    assert task.extract_answer(["2?5=770-7=003+"]) == "+"  # + and - give 7: the answer is the operation chosen
    assert task.extract_answer(["2?5=770-7=003*\n"]) == "*"  # a wrong choice, honestly written, is read
    # Read as written: the values and differences are the check's business, not the reader's.
    assert task.extract_answer(["2?5=770-0=770+\n"]) == "+" and derivation_checks("2?5=0", ["2?5=770-0=770+\n"])
    assert task.extract_answer(["2?5=770-0=003+\n"]) == "+"  # differences to 7, target written 0
    assert not derivation_checks("2?5=0", ["2?5=770-0=003+\n"]) and not derivation_checks("2?5=7", ["2?5=770-0=003+\n"])
    assert task.extract_answer(["2?5=770-;7=7"]) is None  # the former final form


def test_extract_answer_reads_every_honest_derivation_wrong_answers_included():
    # The derivation is checked, not the answer: a wrong operation string, honestly derived, is still read.
    task, rng = ModTargetTask(), random.Random(6)
    for _ in range(100):
        digits = random_digits(rng, 2, 7)
        target = rng.randint(0, 9)
        operations = random_operations(rng, digits)
        steps = write_steps(digits, target, operations)
        question = question_of(digits, target)
        assert task.extract_answer(steps) == operations, steps
        assert derivation_checks(question, steps)
        steps[-1] = steps[-1].rstrip("\n")
        assert task.extract_answer(steps) == operations, steps
        for end in range(len(steps)):
            assert task.extract_answer(steps[:end]) is None and not derivation_checks(question, steps[:end])


@pytest.mark.parametrize("broken", [
    # A wrong one of the three values (not the chosen one, so nothing else gives it away).
    ["3?4=782+;7?2?5=5\n", S2, S3],  # 3-4 is 9
    ["3?4=793+;7?2?5=5\n", S2, S3],  # 3*4 is 2
    [S1, "7?2=054-;5?5=5\n", S3],  # 7+2 is 9
    [S1, S2, "5?5=105-5=650*\n"],  # 5+5 is 0 (the differences those of the values written)
    [S1, S2, "5?5=015-5=560*\n"],  # 5-5 is 0
    [S1, S2, "5?5=006-5=551*\n"],  # 5*5 is 5
    [S1, S2, "5?5=105-5=550*\n"],  # a wrong value, the differences those of the right values
    # The values out of order, one missing or one added.
    ["3?4=729+;7?2?5=5\n", S2, S3],  # the + value right, - and * swapped
    ["3?4=79+;7?2?5=5\n", S2, S3],
    ["3?4=7922+;7?2?5=5\n", S2, S3],
    [S1, S2, "5?5=050-5=505*\n"],  # on the last step (differences following)
    # A wrong chosen value, carried on consistently.
    ["3?4=892+;8?2?5=5\n", "8?2=066-;6?5=5\n", "6?5=110-5=665*\n"],  # 3+4 is not 8
    [S1, S2, "5?5=555-5=000*\n"],  # the target written as every value
    [S1, S2, "5?5=505-5=050+\n"],  # the target written as the chosen value (5+5 is 0)
    # A wrong difference: one digit, the chosen one's made 0, every one 0, or the values copied.
    [S1, S2, "5?5=005-5=551*\n"],  # 5-5 is 0
    [S1, S2, "5?5=005-5=450*\n"],  # 0-5 is 5
    [S1, S2, "5?5=005-5=540*\n"],
    [S1, S2, "5?5=005-5=050-\n"],  # - chosen, its difference written 0
    [S1, S2, "5?5=005-5=000+\n"],
    [S1, S2, "5?5=005-5=005*\n"],  # the values copied (minus 0)
    [S1, S2, "5?5=005-5=661*\n"],  # the values minus 4, not the 5 written
    # The differences in another order.
    [S1, S2, "5?5=005-5=055*\n"],  # reversed
    [S1, S2, "5?5=005-5=505*\n"],  # - and * swapped
    ["3?4=792-0=297+\n"],  # a one-step derivation: 7, 9, 2 reversed
    ["3?4=792-0=972+\n"],  # rotated
    # The last step's target not the one carried (differences to the target it writes, or to the carried one).
    [S1, S2, "5?5=005-7=338*\n"],
    [S1, S2, "5?5=005-4=661*\n"],
    [S1, S2, "5?5=005-4=550*\n"],
    [S1, S2, "5?5=005-0=005*\n"],  # 5*5 - 0 is 0: the choice would look right
    # The '-t=' part missing or malformed on the last step.
    [S1, S2, "5?5=005550*\n"],
    [S1, S2, "5?5=005=550*\n"],
    [S1, S2, "5?5=005-550*\n"],
    [S1, S2, "5?5=005-5550*\n"],
    [S1, S2, "5?5=005+5=550*\n"],
    ["2?5=770=003-\n"],
    # Something written after the chosen operation.
    [S1, S2, "5?5=005-5=550*;5=5\n"],  # the former final chain after the choice
    [S1, S2, "5?5=005-5=550*5\n"],
    [S1, S2, "5?5=005-5=550*=5\n"],
    [S1, S2, "5?5=005-5=550**\n"],
    ["2?5=770-7=003-;7=7\n"],
    # The former last step, a lone value after ';' (even honestly written): no step of any kind any more.
    [S1, S2, "5?5=005*;5=5\n"],
    [S1, S2, "5?5=005+;0=5\n"],
    ["2?5=770-;7=7\n"],
    ["2?5=770-;7=7\n", "7?5=225*;5=7\n"],
    # The chain not starting with the chosen value.
    ["3?4=792+;9?2?5=5\n", "9?2=178-;7?5=5\n", "7?5=225-5=770*\n"],  # + chosen, the - value carried
    ["3?4=792-;7?2?5=5\n", S2, S3],  # - chosen, the + value carried
    [S1, "7?2=954-;9?5=5\n", "9?5=445-5=990-\n"],
    [S1, "7?2=954+;5?5=5\n", S3],  # the operation changed alone: the chain still takes the - value
    [S1, "7?2=954*;5?5=5\n", S3],
    # A miscopied digit of the chain (or a step that does not take the chain's next digit).
    ["3?4=792+;7?3?5=5\n", S2, S3],
    [S1, "7?2=954-;5?6=5\n", "5?6=190-5=645*\n"],  # carried on: the next step still sees it
    [S1, "7?3=041-;4?5=5\n", "4?5=990-5=445*\n"],  # the step reads 3 where the chain says 2
    [S1, "6?2=842-;4?5=5\n", "4?5=990-5=445*\n"],  # the step reads 6 where the chain says 7
    [S1, S2, "5?6=190-5=645*\n"],  # the last step reads 6 where the chain says 5
    [S1, S2, "4?5=990-5=445*\n"],  # the last step reads 4 where the chain says 5
    ["3?4=792+;7?5=5\n", S2, S3],  # a digit dropped from the chain
    [S1, "7?2=954-;5=5\n"],  # the last digit dropped: a lone value too early
    [S1, "7?2=954-;5=5\n", S3],  # a lone value before the last digit, and the last digit taken anyway
    ["3?4=792+;7?2?5?1=5\n", S2, S3],  # a digit added to the chain
    ["3?4=792+;7?5?2=5\n", S2, S3],  # digits reordered
    # A final-form step before the last step.
    [S1, "7?2=954-5=409-\n", S3],  # 7+2=9, 7-2=5, 7*2=4 and their differences to 5, honestly written
    ["3?4=792-5=247+\n", S2, S3],
    [S1, "7?2=954-5=409-\n"],  # and ending there: the 5 never taken
    # A changed target.
    [S1, "7?2=954-;5?5=4\n", "5?5=005-4=661*\n"],
    ["3?4=792+;7?2?5=7\n", S2, S3],
    # The former record of the operations chosen: no longer part of a step.
    ["3?4=792+;7?2?5=5:+\n", "7?2=954-;5?5=5:+-\n", "5?5=005-5=550*:+-*\n"],
    [S1, "7?2=954-;5?5=5:+-\n", S3],
    [S1, S2, "5?5=005-5=550*:+-*\n"],  # on the final step only
    # A step after the final one.
    [S1, S2, S3, "5?1=645-5=190+\n"],
    [S1, S2, S3, "5?1=645+;6=5\n"],
    [S1, S2, S3, S3],
    [S1, S2, S3, "\n"],
    ["2?5=770-7=003-\n", "7?5=225-7=558*\n"],  # a final step is the last step, even of a one-step derivation
    ["2?5=770-7=003-\n", "2?5=770-7=003-\n"],
    # A skipped step.
    [S1, S3],
    [S1, "9?5=445-5=990-\n"],
    # A missing final step.
    [S1, S2],
    [S1],
    [S1, S2, "5?5=005*;5?0=5\n"],  # a chain left after the last digit
    # Another form.
    [S1, "garbage\n", S3],
    ["3+4=7;7?2?5=5:+\n", "7-2=5;5?5=5:+-\n", "5*5=5;+-*\n"],  # the first step form
    [S1, S2, "+-*\n"],
    ["٣?4=792+;7?2?5=5\n", S2, S3],  # a non-ASCII digit (int("٣") is 3, but only ASCII digits are digits)
    [S1, S2, "5?5=005-٥=550*\n"],
    [S1, "7?2=954-;5?5=5\n;\n", S3],  # two lines in one step
    [S1, S2, "5?5=005-5=550*\n5?5=005-5=550*\n"],
])
def test_derivation_checks_refuses_a_derivation_that_does_not_check_and_extract_answer_reads_only_its_form(broken):
    # The execution check refuses each of them under the question they were written for; the reader reads the
    # operations of any derivation whose steps have the step form, wrong values included.
    question = _question_of_case(broken)
    assert not derivation_checks(question, broken)
    expected = operations_of([step.strip() for step in broken]) if _well_formed(broken) else None
    assert ModTargetTask().extract_answer(broken) == expected


def _question_of_case(broken) -> str:
    """The question a case above was written for: 3?4?2?5=5 (Q5) unless its first step is a one-step derivation's
    (2?5 with target 7, 3?4 with target 0)."""
    first = broken[0]
    if first.startswith("2?5="):
        return "2?5=7"
    if first.startswith("3?4=792-0="):
        return "3?4=0"
    return Q5


STEP_FORM = re.compile(r"[0-9]\?[0-9]=[0-9]{3}[-+*];[0-9](\?[0-9])*=[0-9]")
FINAL_FORM = re.compile(r"[0-9]\?[0-9]=[0-9]{3}-[0-9]=[0-9]{3}[-+*]")


def _well_formed(steps) -> bool:
    """Every step but the last has the form of a step before the last, and the last the last step's form (after
    surrounding whitespace), whatever the values: what extract_answer reads."""
    texts = [step.strip() for step in steps]
    return (bool(texts) and FINAL_FORM.fullmatch(texts[-1]) is not None
            and all(STEP_FORM.fullmatch(text) is not None for text in texts[:-1]))


def test_a_miscopied_or_shortened_question_is_read_but_refused_by_the_step_check_and_the_outcome_check():
    # A derivation whose first step miscopies the question and then carries the miscopy on faithfully is an honest
    # derivation of another question: its answer is read, judged on the question's own digits, and its first step
    # fails the execution check, which carries the chain from the question. Here 3?4?3?5 (the 2 miscopied as 3)
    # reaches 5 with "+++"; 3?4?2?5 does not.
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    steps = ["3?4=792+;7?3?5=5\n", "7?3=041+;0?5=5\n", "0?5=550-5=005+\n"]
    assert steps == write_steps([3, 4, 3, 5], 5, "+++")
    assert task.extract_answer(steps) == "+++"
    assert not task.is_correct(problem_of(Q5), steps)
    assert task.step_labels(problem_of(Q5), steps) == [False, False, False]
    assert not task.check_step(prompt, steps[:1]) and not derivation_checks(Q5, steps)
    assert derivation_checks("3?4?3?5=5", steps)  # the question it was written for
    # So is a derivation whose first steps are missing (nothing records the operations chosen before): [S2, S3]
    # is the honest derivation of 7?2?5=5. Its answer is read, refused by the outcome check (one operation short
    # for 3?4?2?5) and by the step check (its first step does not take the question's 3 and 4), every label false.
    assert derivation_checks("7?2?5=5", [S2, S3]) and [S2, S3] == write_steps([7, 2, 5], 5, "-*")
    assert not derivation_checks(Q5, [S2, S3]) and not task.check_step(prompt, [S2])
    assert task.extract_answer([S2, S3]) == "-*"
    assert not task.check_answer("-*", Q5) and not task.is_correct(problem_of(Q5), [S2, S3])
    assert task.step_labels(problem_of(Q5), [S2, S3]) == [False, False]
    assert [S3] == write_steps([5, 5], 5, "*")  # the last step alone: the honest derivation of 5?5=5
    # A last step taken at once is the honest derivation of a one-operation question (here 3?4=5).
    assert task.extract_answer(["3?4=792-5=247+\n"]) == "+" and not task.is_correct(problem_of(Q5), ["3?4=792-5=247+"])
    assert not task.check_step(prompt, ["3?4=792-5=247+\n"])  # two digits left: not a last step
    assert task.check_step("3?4=5\n", ["3?4=792-5=247+\n"])
    assert task.extract_answer([S3]) == "*" and not task.is_correct(problem_of(Q5), [S3])


def test_the_step_check_refuses_every_single_miswritten_step_of_a_derivation_that_extract_answer_still_reads():
    # Each miswrite breaks one consistency with the question or the step before, so the check of that step fails
    # while every step before it passes; the reader still reads the operations the steps state.
    task, rng = ModTargetTask(), random.Random(7)
    for _ in range(300):
        digits = random_digits(rng, 3, 7)
        target = rng.randint(0, 9)
        question = question_of(digits, target)
        prompt = task.format_prompt(problem_of(question))
        operations = random_operations(rng, digits)
        steps = write_steps(digits, target, operations)
        at = rng.randrange(len(steps))
        steps[at] = _miswrite(steps[at], rng)
        assert all(task.check_step(prompt, steps[:index + 1]) for index in range(at)), steps
        assert not task.check_step(prompt, steps[:at + 1]), steps
        assert not derivation_checks(question, steps), steps
        assert task.extract_answer(steps) == operations_of([step.strip() for step in steps]), steps


def _honest(digits, target: int, steps) -> bool:
    """The steps are, up to surrounding whitespace, the writer's steps of this question and the operations they
    state (each step's choice), ending with the last digit."""
    texts = [step.strip() for step in steps]
    if not texts or any(len(text) < 10 for text in texts):
        return False
    operations = operations_of(texts)
    if len(operations) != len(digits) - 1 or not all(op in "+-*" for op in operations):
        return False
    return texts == [step.strip() for step in write_steps(digits, target, operations)]


def test_derivation_checks_accepts_exactly_the_written_derivations_under_random_edits():
    # One character substituted, inserted or deleted in one step, or a step dropped, repeated or swapped with the
    # next: derivation_checks passes exactly when the result is still the writer's derivation of the question
    # (an edit can make another honest derivation, e.g. + for - where both give the same value, or the last
    # step's operation changed: nothing written after it depends on it); extract_answer reads any result that
    # keeps the step form.
    rng = random.Random(10)
    alphabet = "0123456789?=;+-*:x "
    accepted = refused = read_but_refused = 0
    for _ in range(3000):
        digits = random_digits(rng, 2, 6)
        target = rng.randint(0, 9)
        operations = random_operations(rng, digits)
        steps = write_steps(digits, target, operations)
        at = rng.randrange(len(steps))
        text = steps[at].rstrip("\n")
        kind = rng.choice(["substitute", "insert", "delete", "drop", "repeat", "swap"])
        position = rng.randrange(len(text))
        if kind == "substitute":
            steps[at] = text[:position] + rng.choice(alphabet) + text[position + 1:] + "\n"
        elif kind == "insert":
            steps[at] = text[:position] + rng.choice(alphabet) + text[position:] + "\n"
        elif kind == "delete":
            steps[at] = text[:position] + text[position + 1:] + "\n"
        elif kind == "drop":
            del steps[at]
        elif kind == "repeat":
            steps.insert(at, steps[at])
        elif at + 1 < len(steps):
            steps[at], steps[at + 1] = steps[at + 1], steps[at]
        honest = _honest(digits, target, steps)
        assert derivation_checks(question_of(digits, target), steps) == honest, steps
        expected = operations_of([step.strip() for step in steps]) if _well_formed(steps) else None
        assert ModTargetTask().extract_answer(steps) == expected, steps
        assert not honest or expected is not None
        accepted += honest
        refused += not honest
        read_but_refused += not honest and expected is not None
    assert accepted > 150 and refused > 1500 and read_but_refused > 400


def test_step_writes_one_step_from_the_value_operation_digits_left_and_target():
    task = ModTargetTask()
    assert task._step(3, "+", [4, 2, 5], 5) == (S1, 7)
    assert task._step(7, "-", [2, 5], 5) == (S2, 5)
    assert task._step(5, "*", [5], 5) == (S3, 5)
    assert task._step(2, "-", [5], 7) == ("2?5=770-7=003-\n", 7)


def test_check_answer_accepts_every_operation_string_that_reaches_the_target():
    task = ModTargetTask()
    assert task.check_answer("+++", Q4) and task.check_answer("++-", Q4)
    assert task.check_answer(" ++-\n", Q4)
    nine = "3?4?2?5=9"
    accepted = [ops for ops in every_operation_string(3) if task.check_answer(ops, nine)]
    assert accepted == [ops for ops in every_operation_string(3) if chain_value([3, 4, 2, 5], ops) == 9]
    assert len(accepted) == 6  # +*+ +*- *++ *+- **+ **-


def test_check_answer_agrees_with_brute_force_on_random_questions():
    task, rng = ModTargetTask(), random.Random(8)
    for _ in range(60):
        digits = random_digits(rng, 2, 5)
        target = rng.randint(0, 9)
        question = question_of(digits, target)
        for ops in every_operation_string(len(digits) - 1):
            assert task.check_answer(ops, question) == (chain_value(digits, ops) == target), (question, ops)


@pytest.mark.parametrize("answer", ["++*", "*++", "++", "++++", "", "+x+", "+ +", "1+1", None])
def test_check_answer_rejects_wrong_length_characters_none_or_a_miss(answer):
    assert not ModTargetTask().check_answer(answer, Q4)


def test_is_correct_takes_any_right_answer_by_outcome():
    task = ModTargetTask()
    problem = problem_of(Q4)
    assert task.is_correct(problem, task.steps_for(Q4, "+++"))
    assert task.is_correct(problem, task.steps_for(Q4, "++-"))
    assert not task.is_correct(problem, task.steps_for(Q4, "++*"))
    assert not task.is_correct(problem, task.steps_for(Q4, "++"))
    # A wrong last choice made to look right: wrong by outcome whichever digit lies (the reader reads the choice
    # as written; the step check refuses the lie), or not read at all in another form.
    prompt = task.format_prompt(problem)
    lie = task.steps_for(Q4, "+++")
    assert lie[-1] == "9?5=445-4=001+\n"  # 9+5=4, 9-5=4, 9*5=5; minus 4: 0, 0, 1
    for text, read in (("9?5=444-4=000*\n", "++*"),  # the * value written as the target (9*5 is 5)
                       ("9?5=445-4=000*\n", "++*"),  # the * difference written 0 (5-4 is 1)
                       ("9?5=445-5=990*\n", "++*"),  # another target, so that 9*5 - it is 0
                       ("9?5=445*;4=4\n", None),  # the former last form: * chosen, the target shown as its value
                       ("9?5=444*;4=4\n", None),
                       ("9?5=445-4=001*;4=4\n", None)):  # the target shown after the choice
        lie[-1] = text
        assert task.extract_answer(lie) == read and not task.is_correct(problem, lie), text
        assert not task.check_step(prompt, lie) and not derivation_checks(Q4, lie), text
    # * honestly chosen: read, and wrong by outcome.
    lie[-1] = "9?5=445-4=001*\n"
    assert task.extract_answer(lie) == "++*" and not task.is_correct(problem, lie)
    assert task.check_step(prompt, lie) and derivation_checks(Q4, lie)
    # 9+5 and 9-5 are both 4: either choice, honestly written, is a right answer of its own.
    for operation in "+-":
        steps = task.steps_for(Q4, "+++")[:2] + [f"9?5=445-4=001{operation}\n"]
        assert task.extract_answer(steps) == "++" + operation and task.is_correct(problem, steps)


# The execution check of a step (check_step), and the difficulty.


def test_check_step_passes_every_step_of_reference_solutions_of_every_length(small_splits):
    task, splits = small_splits
    rng = random.Random(12)
    problems = [problem for problems in splits.values() for problem in problems]
    for count in range(1, 9):  # 1 to 8 operations, the default ood lengths included
        for _ in range(15):
            digits = [rng.randint(1, 9) for _ in range(count + 1)]
            problems.append(problem_of(question_of(digits, chain_value(digits, random_operations(rng, digits)))))
    for problem in problems:
        steps, prompt = task.reference_steps(problem), task.format_prompt(problem)
        assert all(task.check_step(prompt, steps[:end]) for end in range(1, len(steps) + 1)), problem
        assert derivation_checks(problem.question, steps), problem
    assert {task.difficulty(problem) for problem in problems} == set(range(1, 9))


def test_check_step_fails_a_step_with_one_wrong_value():
    # Q5 = 3?4?2?5=5: S1 3?4=792+ (3+4=7, 3-4=9, 3*4=2), S2 7?2=954- (9, 5, 4), S3 5?5=005-5=550* (0, 0, 5).
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    assert task.check_step(prompt, [S1]) and task.check_step(prompt, [S1, S2]) and task.check_step(prompt, [S1, S2, S3])
    assert not task.check_step(prompt, ["3?4=782+;7?2?5=5\n"])  # 3-4 is 9, not the value chosen
    assert not task.check_step(prompt, [S1, "7?2=964-;6?5=5\n"])  # 7-2 is 5, the wrong value chosen and carried
    assert not task.check_step(prompt, [S1, "7?2=964-;5?5=5\n"])  # 7-2 is 5, the right value carried
    assert not task.check_step(prompt, [S1, S2, "5?5=006-5=551*\n"])  # 5*5 is 5, its difference that of 6


def test_check_step_fails_a_last_step_with_a_wrong_difference():
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    assert not task.check_step(prompt, [S1, S2, "5?5=005-5=540*\n"])  # 0-5 is 5
    assert not task.check_step(prompt, [S1, S2, "5?5=005-5=000*\n"])  # every difference written 0
    assert not task.check_step(prompt, [S1, S2, "5?5=005-5=055*\n"])  # reversed
    assert not task.check_step("2?5=7\n", ["2?5=770-7=004-\n"])  # 0-7 is 3


def test_check_step_fails_a_step_that_does_not_carry_the_chain_on():
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    assert not task.check_step(prompt, ["3?4=792+;9?2?5=5\n"])  # + chosen, the - value carried
    assert not task.check_step(prompt, ["3?4=792+;7?3?5=5\n"])  # the question's 2 miscopied
    assert not task.check_step(prompt, ["3?4=792+;7?5=5\n"])  # a digit dropped
    assert not task.check_step(prompt, ["3?4=792+;7?2?5?1=5\n"])  # a digit added
    assert not task.check_step(prompt, ["4?3=712+;7?2?5=5\n"])  # the question's digits taken swapped
    assert not task.check_step(prompt, [S1, "8?2=066-;6?5=5\n"])  # right values for 8?2, but S1 left 7?2
    assert not task.check_step(prompt, [S1, "7?5=225-;2?5=5\n"])  # the chain's 5 taken before its 2
    assert not task.check_step(prompt, [S1, "7?2=954-5=409-\n"])  # a last step with a digit left
    assert not task.check_step(prompt, [S1, S2, "5?5=005*;5=5\n"])  # no last step with no digit left


def test_check_step_fails_a_step_that_miscopies_the_target():
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    assert not task.check_step(prompt, ["3?4=792+;7?2?5=4\n"])  # the question's 5 copied as 4
    assert not task.check_step(prompt, [S1, "7?2=954-;5?5=4\n"])  # S1's 5 copied as 4
    # The last step's target not the one carried, its differences right for the one it writes (0-4=6, 5-4=1).
    assert not task.check_step(prompt, [S1, S2, "5?5=005-4=661*\n"])


def test_check_step_judges_only_the_last_step_carrying_the_chain_the_step_before_wrote():
    # 3+4 is 7, not 8: the first step fails; the second, right for the 8?2 the first step left, passes.
    task = ModTargetTask()
    prompt = task.format_prompt(problem_of(Q5))
    steps = ["3?4=892+;8?2?5=5\n", "8?2=066-;6?5=5\n"]  # 8+2=0, 8-2=6, 8*2=6
    assert not task.check_step(prompt, steps[:1]) and task.check_step(prompt, steps)


def test_check_step_never_looks_at_reachability():
    # Q4 = 3?4?2?5=4: only +++ and ++- reach 4. A correctly written step that loses the target passes the check
    # (the labels, which do look ahead, are false), and so does an honestly written last choice that misses it.
    task = ModTargetTask()
    problem = problem_of(Q4)
    prompt = task.format_prompt(problem)
    for operations in ("-++", "*--", "+*+", "++*"):
        steps = task.steps_for(Q4, operations)
        assert all(task.check_step(prompt, steps[:end]) for end in range(1, 4)), operations
        assert derivation_checks(Q4, steps) and not task.is_correct(problem, steps)
        assert False in task.step_labels(problem, steps)


def test_check_step_fails_without_steps_or_a_question_and_reads_the_last_line_of_the_prompt():
    task = ModTargetTask()
    assert not task.check_step(task.format_prompt(problem_of(Q5)), [])
    assert not task.check_step("", [S1]) and not task.check_step("no question here\n", [S1])
    assert task.check_step("an instruction\n" + Q5 + "\n", [S1])  # the question on the prompt's last line
    assert task.has_step_check


def test_extract_answer_reads_the_operations_of_a_derivation_with_a_wrong_value():
    # 7-2 is 5, written 6 (and its wrong difference on the last step): the operations are read as written, and
    # +-* reaches 5 on 3?4?2?5 by outcome. The execution check is what refuses the step.
    task = ModTargetTask()
    steps = [S1, "7?2=964-;5?5=5\n", S3]
    assert task.extract_answer(steps) == "+-*" and task.is_correct(problem_of(Q5), steps)
    assert not task.check_step(task.format_prompt(problem_of(Q5)), steps[:2]) and not derivation_checks(Q5, steps)
    wrong_last = [S1, S2, "5?5=006-5=551*\n"]  # 5*5 is 5
    assert task.extract_answer(wrong_last) == "+-*" and not derivation_checks(Q5, wrong_last)


def test_difficulty_is_the_number_of_question_marks_in_the_question(small_splits):
    task, splits = small_splits
    assert task.difficulty(problem_of(Q5)) == 3 and task.difficulty(problem_of("9?1=0")) == 1
    assert task.difficulty(problem_of("1?2?3?4?5?6?7?8?9=0")) == 8
    for problems in splits.values():
        for problem in problems:
            assert task.difficulty(problem) == problem.question.count("?"), problem
    assert task.default_curriculum_start == 3


# Step labels.

# 3?4?2?5=4 with "+++": 3+4=7 (3-4=9, 3*4=2), 7+2=9 (7-2=5, 7*2=4), 9+5=4 (9-5=4, 9*5=5).
R1, R2, R3 = "3?4=792+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-4=001+\n"


def test_step_labels_of_both_right_solutions_are_all_true():
    task = ModTargetTask()
    assert task.steps_for(Q4, "+++") == [R1, R2, R3]
    for operations in ("+++", "++-"):
        assert task.step_labels(problem_of(Q4), task.steps_for(Q4, operations)) == [True, True, True]


def test_a_correctly_written_step_that_loses_the_target_is_false_and_so_is_everything_after():
    task = ModTargetTask()
    problem = problem_of(Q4)
    assert task.step_labels(problem, task.steps_for(Q4, "-++")) == [False, False, False]
    assert task.step_labels(problem, task.steps_for(Q4, "*++")) == [False, False, False]
    assert task.step_labels(problem, task.steps_for(Q4, "+*+")) == [True, False, False]
    assert task.step_labels(problem, task.steps_for(Q4, "+-+")) == [True, False, False]
    assert task.step_labels(problem, task.steps_for(Q4, "++*")) == [True, True, False]


@pytest.mark.parametrize(
    "wrong_step",
    ["3?4=892+;8?2?5=4\n",  # wrong arithmetic, carried on
     "3?4=782+;7?2?5=4\n",  # a wrong value that was not chosen
     "3?4=793+;7?2?5=4\n",
     "3?4=729+;7?2?5=4\n",  # the values out of order
     "3?4=79+;7?2?5=4\n",  # a value missing
     "3?4=7922+;7?2?5=4\n",  # a value added
     "3?4=792;7?2?5=4\n",  # no operation chosen
     "3?4=792+-;7?2?5=4\n",  # two chosen
     "3?4=792+;8?2?5=4\n",  # the chain starts with no value written
     "3?4=792+;9?2?5=4\n",  # the chain starts with another operation's value
     "3?4=792-;7?2?5=4\n",  # - chosen, the + value carried
     "3?4=792*;7?2?5=4\n",  # * chosen, the + value carried
     "3?4=792+;7?2?6=4\n",  # a digit copied wrong
     "3?4=792+;7?5?2=4\n",  # digits copied out of order
     "3?4=792+;7?2?5?1=4\n",  # a digit added
     "3?4=792+;7?5=4\n",  # a digit dropped
     "3?4=792+;7?2?5=5\n",  # the target copied wrong
     "3?4=792+;7?2?5=\n",  # no target
     "4?3=712+;7?2?5=4\n",  # the digits swapped
     "3?4=792+;7=4\n",  # the former final form, too early
     "3?4=792-4=358+\n",  # a final step too early (7-4=3, 9-4=5, 2-4=8)
     "3?4=792+;7?2?5=4;\n",
     "3?4=792+;7?2?5=4:+\n",  # the former record
     "٣?4=792+;7?2?5=4\n",  # a non-ASCII digit
     "3+4=7;7?2?5=4:+\n"],  # the first step form
)
def test_a_miswritten_step_is_false_and_so_is_everything_after(wrong_step):
    task = ModTargetTask()
    assert task.step_labels(problem_of(Q4), [wrong_step, R2, R3]) == [False, False, False]


def test_a_miswritten_later_step_keeps_the_earlier_labels():
    task = ModTargetTask()
    problem = problem_of(Q4)
    assert task.step_labels(problem, [R1, "7?2=954+;9?5=5\n", R3]) == [True, False, False]
    assert task.step_labels(problem, [R1, "7?2=954+;5?5=4\n", R3]) == [True, False, False]  # the - value taken
    assert task.step_labels(problem, [R1, R2, "9?5=444-4=000+\n"]) == [True, True, False]  # 9*5 is 5
    # * (9*5=5) chosen and made to look right: its value or its difference lied.
    assert task.step_labels(problem, [R1, R2, "9?5=444-4=000*\n"]) == [True, True, False]
    assert task.step_labels(problem, [R1, R2, "9?5=445-4=000*\n"]) == [True, True, False]
    assert task.step_labels(problem, [R1, R2, "9?5=445-4=001*\n"]) == [True, True, False]  # honest, but wrong
    assert task.step_labels(problem, [R1, R2, "9?5=445-4=100+\n"]) == [True, True, False]  # differences reversed
    assert task.step_labels(problem, [R1, R2, "9?5=445-5=990+\n"]) == [True, True, False]  # another target
    assert task.step_labels(problem, [R1, R2, "9?5=445-4=001+;4=4\n"]) == [True, True, False]  # more after it
    assert task.step_labels(problem, [R1, R2, "9?5=445+;4=4\n"]) == [True, True, False]  # the former last form
    assert task.step_labels(problem, [R1, "7?2=954+;9?5=4\n"]) == [True, True]  # an unfinished prefix
    assert task.step_labels(problem, [R1, "7?2=954-4=510+\n"]) == [True, False]  # a last step too early
    # The right step text of another prefix: "7?2=954+;..." after the first step went another way.
    assert task.step_labels(problem, [task.steps_for(Q4, "*")[0], R2]) == [False, False]


def test_labels_never_recover_after_a_false_step():
    # After the miswritten first step, "3?2=516+;..." is what the first step would be if the 4 were skipped; it must
    # not count as right whatever state the labeller kept.
    # (With target 0 it would even leave the target reachable: 5-5=0.)
    task = ModTargetTask()
    steps = ["3?4=892+;8?2?5=0\n", "3?2=516+;5?5=0\n", "5?5=005-0=005-\n"]
    assert task.step_labels(problem_of("3?4?2?5=0"), steps) == [False, False, False]


def test_step_labels_compare_without_surrounding_whitespace_and_reject_extra_steps():
    task = ModTargetTask()
    steps = task.steps_for(Q4, "++-")
    assert task.step_labels(problem_of(Q4), [" " + steps[0], steps[1], steps[2].strip()]) == [True, True, True]
    assert task.step_labels(problem_of(Q4), steps + ["4?1=534-4=190+\n"]) == [True, True, True, False]
    assert task.step_labels(problem_of(Q4), steps + ["4?1=534+;5=4\n"]) == [True, True, True, False]
    assert task.step_labels(problem_of(Q4), steps + [steps[-1]]) == [True, True, True, False]
    assert task.step_labels(problem_of(Q4), []) == []


def _miswrite(step: str, rng: random.Random) -> str:
    """A variant of a correctly written step that no operation writes (each change breaks one consistency)."""

    def other(character: str) -> str:
        return str((int(character) + rng.randint(1, 9)) % 10)

    final = re.fullmatch(r"(\d)\?(\d)=(\d{3})-(\d)=(\d{3})([-+*])", step.rstrip("\n"))
    if final is not None:
        value, digit, values, target, differences, operation = final.groups()
        # (The chosen operation alone is no miswrite here: nothing after it depends on it.)
        kind = rng.choice(["value", "digit", "values", "target", "difference", "order"])
        if kind == "value":  # the running value: the three values are no longer its
            value = other(value)
        elif kind == "digit":
            digit = other(digit)
        elif kind == "values":  # one of the three values, the differences left those of the right one
            position = rng.randrange(3)
            values = values[:position] + other(values[position]) + values[position + 1:]
        elif kind == "target":  # the target: the differences are no longer to it
            target = other(target)
        elif kind == "difference":
            position = rng.randrange(3)
            differences = differences[:position] + other(differences[position]) + differences[position + 1:]
        else:  # two differences that differ swapped (no value is given by all three operations)
            first, second = rng.choice([(i, j) for i, j in itertools.combinations(range(3), 2)
                                        if differences[i] != differences[j]])
            swapped = list(differences)
            swapped[first], swapped[second] = swapped[second], swapped[first]
            differences = "".join(swapped)
        return f"{value}?{digit}={values}-{target}={differences}{operation}\n"

    match = re.fullmatch(r"(\d)\?(\d)=(\d{3})([-+*]);([\d?]+)=(\d)", step.rstrip("\n"))
    value, digit, values, operation, chain, target = match.groups()
    kind = rng.choice(["value", "digit", "values", "operation", "start", "copy"])
    if kind == "value":  # the running value on the left: the three values are no longer its
        value = other(value)
    elif kind == "digit":  # the digit on the left
        digit = other(digit)
    elif kind == "values":  # one of the three values
        position = rng.randrange(3)
        values = values[:position] + other(values[position]) + values[position + 1:]
    elif kind == "operation":  # the chosen operation alone, to one whose value is not the one the chain took
        # (with digit 5, + and - give the same value: switching between them writes another honest step; no value
        # is given by all three operations, so there is always another to switch to)
        operation = rng.choice([op for op in "+-*" if values["+-*".index(op)] != chain[0]])
    elif kind == "start":  # the chain's first value, the one chosen
        chain = other(chain[0]) + chain[1:]
    else:  # one of the digits copied after the new value, or the target
        positions = [i for i, c in enumerate(chain) if c.isdigit() and i > 0] + ["target"]
        position = rng.choice(positions)
        if position == "target":
            target = other(target)
        else:
            chain = chain[:position] + other(chain[position]) + chain[position + 1:]
    return f"{value}?{digit}={values}{operation};{chain}={target}\n"


def test_miswrite_always_changes_the_step():
    rng = random.Random(9)
    for _ in range(300):
        digits = random_digits(rng, 2, 6)
        steps = write_steps(digits, rng.randint(0, 9), "".join(rng.choice("+-*") for _ in digits[1:]))
        step = rng.choice(steps)
        assert _miswrite(step, rng) != step


def test_step_labels_agree_with_brute_force_on_random_prefixes():
    task, rng = ModTargetTask(), random.Random(4)
    false_seen = true_seen = 0
    for _ in range(400):
        digits = random_digits(rng, 2, 6)
        target = rng.randint(0, 9)
        question = question_of(digits, target)
        operations = "".join(rng.choice("+-*") for _ in range(rng.randint(1, len(digits) - 1)))
        steps = write_steps(digits, target, operations)
        wrong_at = rng.randrange(len(steps)) if rng.random() < 0.3 else None
        if wrong_at is not None:
            steps[wrong_at] = _miswrite(steps[wrong_at], rng)
        expected = []
        for index in range(len(steps)):
            right = (wrong_at is None or index < wrong_at) and still_reachable(digits, target, operations[:index + 1])
            expected.append(right and (not expected or expected[-1]))
        labels = task.step_labels(problem_of(question), steps)
        assert labels == expected, (question, steps)
        false_seen += labels.count(False)
        true_seen += labels.count(True)
    assert false_seen > 100 and true_seen > 100


def test_step_labels_agree_with_brute_force_on_every_prefix_of_small_questions():
    task = ModTargetTask()
    for digits, target in (([3, 4, 2, 5], 4), ([3, 4, 2, 5], 5), ([5, 5, 9, 2], 0), ([7, 1, 3], 1)):
        question = question_of(digits, target)
        for operations in every_operation_string(len(digits) - 1):
            expected, right = [], True
            for index in range(len(operations)):
                right = right and still_reachable(digits, target, operations[:index + 1])
                expected.append(right)
            assert task.step_labels(problem_of(question), write_steps(digits, target, operations)) == expected
