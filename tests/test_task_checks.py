"""Verification rationales and chain-of-thought programs of every synthetic task, on random problems and random
corruptions of their reference solutions: a rationale finds a wrong step exactly when the step labels do, and a
program redoes the stated computation."""

from __future__ import annotations

import contextlib
import io
import random
import subprocess
import sys

import pytest

from lm.data import Problem
from lm.tokenizer import DEFAULT_ALPHABET
from rest_mcts.tasks import TASKS, get_task
from rest_mcts.tasks.base import RIGHT_MARK, WRONG_MARK, StepCheck, Task, rationale_finds_a_wrong_step, rationale_of
from rest_mcts.tasks.modchain import OPERATIONS
from rest_mcts.tasks.modtarget import derivation_checks

SYNTHETIC = sorted(name for name, task_class in TASKS.items() if task_class.synthetic)
STEP_CHARACTERS = DEFAULT_ALPHABET.replace("\n", "")


@pytest.fixture(scope="module", params=SYNTHETIC)
def task_problems(request):
    """A synthetic task with 150 test problems (seed 0) and 50 of OOD length, drawn straight from the split's
    generator: drawing modtarget's held-out OOD pool of 1000 problems takes seconds."""
    task = get_task(request.param)
    make_long = task._make_one("ood")
    rng = random.Random(f"checks/{task.name}")
    long = [Problem(f"long-{index}", *make_long(rng)) for index in range(50)]
    return task, task.problems("test", 150, 0) + long


def run_program(source: str) -> str:
    """What a program prints, run here with exec (its single line, without the newline)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(source, "<cot_program>", "exec"), {})
    lines = output.getvalue().splitlines()
    assert len(lines) == 1, output.getvalue()
    return lines[0]


def garbage(rng: random.Random) -> str:
    """A random step over the alphabet that holds a `#`, a character no task's step has."""
    text = "".join(rng.choice(STEP_CHARACTERS) for _ in range(rng.randint(0, 20)))
    position = rng.randint(0, len(text))
    return text[:position] + "#" + text[position:] + rng.choice(["\n", ""])


def corruptions(steps: list[str], rng: random.Random) -> list[list[str]]:
    """Random variants of a solution: a character changed, two steps swapped, a step truncated, a step dropped or
    repeated, a step replaced by garbage, garbage steps alone, and a garbage step after the end."""
    variants = []
    index = rng.randrange(len(steps))
    text = steps[index].rstrip("\n")
    position = rng.randrange(len(text))
    changed = text[:position] + rng.choice(STEP_CHARACTERS.replace(text[position], "")) + text[position + 1:]
    variants.append(steps[:index] + [changed + "\n"] + steps[index + 1:])
    if len(steps) >= 2:
        first, second = sorted(rng.sample(range(len(steps)), 2))
        swapped = list(steps)
        swapped[first], swapped[second] = swapped[second], swapped[first]
        variants.append(swapped)
        variants.append(steps[:index] + steps[index + 1:])
    variants.append(steps[:index] + [text[:rng.randrange(len(text))] + rng.choice(["\n", ""])] + steps[index + 1:])
    variants.append(steps[:index + 1] + [steps[index]] + steps[index + 1:])
    variants.append(steps[:index] + [garbage(rng)] + steps[index + 1:])
    variants.append([garbage(rng) for _ in range(rng.randint(1, 4))])
    variants.append(steps + [garbage(rng)])
    return variants


def lines_of(rationale: str) -> list[list[str]]:
    return [line.split() for line in rationale.splitlines()]


# The shared rationale form.


def test_a_rationale_ends_at_its_first_wrong_line_and_names_the_wrong_part():
    checks = [StepCheck("3+4=7"), StepCheck("7*2=4", "chain"), StepCheck("4-5=9")]
    assert rationale_of(checks) == "3+4=7 ok\n7*2=4 chain no\n"
    assert rationale_of([StepCheck("3+4=7"), StepCheck("7*2=4", "")]) == "3+4=7 ok\n7*2=4 no\n"
    assert rationale_of([]) == ""


def test_rationale_finds_a_wrong_step_reads_the_last_word_of_each_line():
    assert rationale_finds_a_wrong_step("kato ok\nribu no\n")
    assert rationale_finds_a_wrong_step("7*2=4 chain no")
    assert not rationale_finds_a_wrong_step("kato ok\nnobu ok\n")
    assert not rationale_finds_a_wrong_step("")


# Rationales against the step labels.


def test_every_synthetic_task_writes_rationales_and_programs():
    assert SYNTHETIC == ["last_letter", "modchain", "modtarget", "word_sort"]


def test_the_rationale_of_a_reference_solution_and_of_each_of_its_prefixes_is_all_ok(task_problems):
    task, problems = task_problems
    for problem in problems:
        steps = task.reference_steps(problem)
        for end in range(1, len(steps) + 1):
            rationale = task.verification_rationale(problem, steps[:end])
            assert [line[-1] for line in lines_of(rationale)] == [RIGHT_MARK] * end, (problem, rationale)


def test_a_rationale_says_no_exactly_where_the_step_labels_turn_false(task_problems):
    task, problems = task_problems
    rng = random.Random(f"rationale/{task.name}")
    wrong_seen = right_seen = 0
    for problem in problems:
        for steps in corruptions(task.reference_steps(problem), rng):
            labels = task.step_labels(problem, steps)
            for end in range(1, len(steps) + 1):
                rationale = task.verification_rationale(problem, steps[:end])
                marks = [line[-1] for line in lines_of(rationale)]
                first_wrong = labels.index(False) if False in labels[:end] else None
                expected = [RIGHT_MARK] * end if first_wrong is None else [RIGHT_MARK] * first_wrong + [WRONG_MARK]
                assert marks == expected, (problem, steps[:end], rationale)
                assert rationale_finds_a_wrong_step(rationale) is (not labels[end - 1])
                assert all(WRONG_MARK not in line[:-1] and RIGHT_MARK not in line[:-1] for line in lines_of(rationale))
                wrong_seen += not labels[end - 1]
                right_seen += labels[end - 1]
    assert wrong_seen > 1000 and right_seen > 300


def test_a_finished_solution_whose_rationale_finds_nothing_wrong_is_correct(task_problems):
    task, problems = task_problems
    rng = random.Random(f"finished/{task.name}")
    for problem in problems:
        for steps in corruptions(task.reference_steps(problem), rng):
            if task.extract_answer(steps) is not None and not rationale_finds_a_wrong_step(
                    task.verification_rationale(problem, steps)):
                assert task.is_correct(problem, steps), (problem, steps)


def test_rationales_stay_inside_the_tokenizer_alphabet(task_problems):
    task, problems = task_problems
    rng = random.Random(f"alphabet/{task.name}")
    for problem in problems:
        for steps in [task.reference_steps(problem), *corruptions(task.reference_steps(problem), rng)]:
            rationale = task.verification_rationale(problem, steps)
            assert set(rationale) <= set(DEFAULT_ALPHABET), rationale


def test_the_rationale_of_no_steps_is_empty(task_problems):
    task, problems = task_problems
    assert task.verification_rationale(problems[0], []) == ""


# Programs.


def test_the_program_of_a_reference_solution_prints_a_right_answer(task_problems):
    task, problems = task_problems
    for problem in problems:
        steps = task.reference_steps(problem)
        printed = run_program(task.cot_program(problem, steps))
        assert printed == task.extract_answer(steps) and task.check_answer(printed, problem.answer), problem


def test_a_program_runs_alone_in_a_fresh_interpreter(task_problems):
    task, problems = task_problems
    problem = problems[-1]
    source = task.cot_program(problem, task.reference_steps(problem))
    assert "import" not in source
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == task.extract_answer(task.reference_steps(problem)) + "\n"


def test_programs_of_garbage_or_unfinished_solutions_are_none(task_problems):
    task, problems = task_problems
    rng = random.Random(f"garbage/{task.name}")
    for problem in problems:
        steps = task.reference_steps(problem)
        assert task.cot_program(problem, [garbage(rng) for _ in range(rng.randint(1, 4))]) is None
        assert task.cot_program(problem, steps[:-1]) is None
        index = rng.randrange(len(steps))
        assert task.cot_program(problem, steps[:index] + [garbage(rng)] + steps[index + 1:]) is None
    assert task.cot_program(problems[0], []) is None


def test_programs_of_corrupted_solutions_print_one_line_or_are_none(task_problems):
    task, problems = task_problems
    rng = random.Random(f"programs/{task.name}")
    for problem in problems:
        for steps in corruptions(task.reference_steps(problem), rng):
            source = task.cot_program(problem, steps)
            if source is not None:
                run_program(source)


def wrong_value(task: Task, problem: Problem, rng: random.Random) -> list[str]:
    """The reference solution with one written value wrong. In modchain a shown operation whose value is not the
    value written beside it; in last_letter and word_sort the word the next step takes miscopied among the words
    left (its last letter changed), so the stated answer stays right; in modtarget one of a step's three values."""
    steps = task.reference_steps(problem)
    if task.name == "modchain":
        index = rng.randrange(len(steps))
        running = int(problem.answer[index - 1]) if index else int(problem.question[0])
        value = int(steps[index][4])
        operation, digit = rng.choice([(op, d) for op in OPERATIONS for d in range(10)
                                       if OPERATIONS[op](running, d) != value])
        return steps[:index] + [f"{steps[index][0]}{operation}{digit}{steps[index][3:]}"] + steps[index + 1:]
    if task.name == "modtarget":
        index = rng.randrange(len(steps))
        position = rng.choice([4, 5, 6])
        text = steps[index]
        return steps[:index] + [text[:position] + str((int(text[position]) + 1) % 10) + text[position + 1:]] + \
            steps[index + 1:]
    index = rng.randrange(len(steps) - 1)
    text = steps[index].rstrip("\n")
    if task.name == "last_letter":  # words left, ':', letters: the next step drops the first word left
        words_left, separator, tail = text.partition(":")
        words = words_left.split(" ")
        moved, rebuild = 0, lambda: " ".join(words) + separator + tail
    else:  # sorted words, '|', words left: the next step moves the first of them alphabetically
        head, separator, words_left = text.partition("|")
        words = words_left.split(" ")
        moved, rebuild = words.index(min(words)), lambda: head + separator + " ".join(words)
    word = words[moved]
    words[moved] = word[:-1] + rng.choice([c for c in "bcdfghjklmnprstvz" if c != word[-1]])
    return steps[:index] + [rebuild() + "\n"] + steps[index + 1:]


def test_a_wrong_written_value_makes_the_program_disagree_with_the_stated_answer_or_fails_the_step_check(task_problems):
    task, problems = task_problems
    rng = random.Random(f"wrong-value/{task.name}")
    for problem in problems:
        steps = wrong_value(task, problem, rng)
        assert task.step_labels(problem, steps)[-1] is False
        if task.name == "modtarget":
            # The reader reads the operations as written and the program redoes them from the digits the steps
            # state, not the values written: both give the reference answer. The execution check refuses the step.
            index = next(i for i, (a, b) in enumerate(zip(steps, task.reference_steps(problem))) if a != b)
            assert not task.check_step(task.format_prompt(problem), steps[:index + 1]), (problem, steps)
            assert not derivation_checks(problem.question, steps), (problem, steps)
            assert task.is_correct(problem, steps), (problem, steps)
            assert run_program(task.cot_program(problem, steps)) == task.extract_answer(steps), (problem, steps)
            continue
        assert task.is_correct(problem, steps), (problem, steps)
        assert run_program(task.cot_program(problem, steps)) != task.extract_answer(steps), (problem, steps)


# Hand-checked rationales and programs (word_sort's are in tests/test_word_sort.py).

MODCHAIN = Problem("m", "3+4*2-5", "749")
MODCHAIN_STEPS = ["3+4=7;7*2-5:7\n", "7*2=4;4-5:74\n", "4-5=9;749\n"]


@pytest.mark.parametrize(
    "steps, rationale",
    [(MODCHAIN_STEPS, "3+4=7 ok\n7*2=4 ok\n4-5=9 ok\n"),
     (["3+4=7;7*2-5:7\n", "7*2=5;5-5:75\n", "5-5=0;750\n"], "3+4=7 ok\n7*2=4 no\n"),  # a value wrong
     (["3+4=7;7*2-5:7\n", "7*3=4;4-5:74\n"], "3+4=7 ok\n7*2=4 no\n"),  # the shown operation wrong
     (["3+4=7;7*2-6:7\n"], "3+4=7 chain no\n"),
     (["3+4=7;7*2-5:1\n"], "3+4=7 record no\n"),
     (["3+4=7;7\n"], "3+4=7 chain no\n"),  # a last step too early
     (["3+4=7;7*2-5:7\n", "4-5=9;749\n"], "3+4=7 ok\n7*2=4 no\n"),  # a step skipped
     (MODCHAIN_STEPS + ["9\n"], "3+4=7 ok\n7*2=4 ok\n4-5=9 ok\nend no\n"),
     (["hello\n"], "3+4=7 no\n")],
)
def test_modchain_rationales(steps, rationale):
    assert get_task("modchain").verification_rationale(MODCHAIN, steps) == rationale


def test_modchain_program_evaluates_the_shown_operations_on_its_own_values():
    task = get_task("modchain")
    assert task.cot_program(MODCHAIN, MODCHAIN_STEPS) == (
        "value = 3\nrecord = ''\n"
        "value = (value + 4) % 10\nrecord += str(value)\n"
        "value = (value * 2) % 10\nrecord += str(value)\n"
        "value = (value - 5) % 10\nrecord += str(value)\n"
        "print(record)\n")
    # 7*3 shown with the value of 7*2: the record is right; the program computes 7*3=1, then 1-5=6.
    steps = ["3+4=7;7*2-5:7\n", "7*3=4;4-5:74\n", "4-5=9;749\n"]
    assert task.is_correct(MODCHAIN, steps) and run_program(task.cot_program(MODCHAIN, steps)) == "716"
    # A wrong value carried on: the stated record 750 is wrong and the program's is right.
    steps = ["3+4=7;7*2-5:7\n", "7*2=5;5-5:75\n", "5-5=0;750\n"]
    assert run_program(task.cot_program(MODCHAIN, steps)) == "749"


LAST_LETTER = Problem("l", "kato ribu sel", "oul")
LAST_LETTER_STEPS = ["ribu sel:o\n", "sel:ou\n", "oul\n"]


@pytest.mark.parametrize(
    "steps, rationale",
    [(LAST_LETTER_STEPS, "kato=o ok\nribu=u ok\nsel=l ok\n"),
     (["ribu sel:o\n", "sel:oi\n"], "kato=o ok\nribu=u no\n"),
     (["ribu sel:o\n", "sel:au\n"], "kato=o ok\nribu=u letters no\n"),
     (["ribu sek:o\n"], "kato=o left no\n"),
     (["ribu sel:o\n", "oul\n"], "kato=o ok\nribu=u no\n"),  # a step skipped
     (LAST_LETTER_STEPS + ["l\n"], "kato=o ok\nribu=u ok\nsel=l ok\nend no\n"),
     (["?#\n"], "kato=o no\n")],
)
def test_last_letter_rationales(steps, rationale):
    assert get_task("last_letter").verification_rationale(LAST_LETTER, steps) == rationale


def test_last_letter_program_takes_the_last_letters_of_the_words_the_steps_drop():
    task = get_task("last_letter")
    assert task.cot_program(LAST_LETTER, LAST_LETTER_STEPS) == (
        "dropped = ['kato', 'ribu', 'sel']\nprint(''.join(word[-1] for word in dropped))\n")
    steps = ["ribu sek:o\n", "sek:ou\n", "oul\n"]  # sel miscopied as sek, then dropped as sek
    assert task.is_correct(LAST_LETTER, steps) and run_program(task.cot_program(LAST_LETTER, steps)) == "ouk"


# 3?4?2?5=4: "+++" and "++-" reach 4; after "+*" (7*2=4) no choice does (4+5=9, 4-5=9, 4*5=0).
MODTARGET = Problem("t", "3?4?2?5=4", "3?4?2?5=4")
MODTARGET_STEPS = ["3?4=792+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-4=001+\n"]


@pytest.mark.parametrize(
    "steps, rationale",
    [(MODTARGET_STEPS, "3?4=792+ ok\n7?2=954+ ok\n9?5=445-4=001+ ok\n"),
     (["3?4=792+;7?2?5=4\n", "7?2=954*;4?5=4\n"], "3?4=792+ ok\n7?2=954* lost no\n"),
     (["3?4=782+;7?2?5=4\n"], "3?4=792+ no\n"),  # a value wrong
     (["3?4=792+;7?2?6=4\n"], "3?4=792+ chain no\n"),  # a digit copied wrong
     (["3?4=792+;7?2?5=5\n"], "3?4=792+ chain no\n"),  # the target copied wrong
     (["3?4=792-;7?2?5=4\n"], "3?4=792- chain no\n"),  # - chosen, the + value carried
     (["3?4=792+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-4=001*\n"], "3?4=792+ ok\n7?2=954+ ok\n"
      "9?5=445-4=001* lost no\n"),  # the last choice misses the target
     (["3?4=792+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-4=011+\n"], "3?4=792+ ok\n7?2=954+ ok\n"
      "9?5=445-4=001+ no\n"),  # a difference wrong
     (["3?4=792+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-5=990+\n"], "3?4=792+ ok\n7?2=954+ ok\n"
      "9?5=445-4=001+ chain no\n"),  # another target
     (["3?4=792-4=358+\n"], "3?4=792 no\n"),  # a last step too early
     (MODTARGET_STEPS + ["4?1=534-4=190+\n"], "3?4=792+ ok\n7?2=954+ ok\n9?5=445-4=001+ ok\nend no\n")],
)
def test_modtarget_rationales(steps, rationale):
    assert get_task("modtarget").verification_rationale(MODTARGET, steps) == rationale


def test_modtarget_program_applies_the_chosen_operations_and_checks_the_stated_target():
    task = get_task("modtarget")
    assert task.cot_program(MODTARGET, MODTARGET_STEPS) == (
        "value = 3\nvalue = (value + 4) % 10\nvalue = (value + 2) % 10\nvalue = (value + 5) % 10\n"
        "print('+++' if value == 4 else 'none')\n")
    # An honest derivation whose last choice misses: a stated answer, wrong, and a program that says so.
    steps = MODTARGET_STEPS[:2] + ["9?5=445-4=001*\n"]
    assert task.extract_answer(steps) == "++*" and not task.is_correct(MODTARGET, steps)
    assert run_program(task.cot_program(MODTARGET, steps)) == "none"


def test_modtarget_program_takes_the_digits_the_steps_state_and_the_rationale_checks_them_against_the_question():
    # The first step reads 3?4 as 4?3 and every step after it is consistent: its operations happen to reach the
    # target on the question's digits too, so the solution is correct by outcome; the program, which reads the
    # digits the steps state, agrees with it; the rationale (like the step labels and the execution check, which
    # carries the chain from the question) rejects the first step, whose value and digit are not the question's.
    task = get_task("modtarget")
    steps = ["4?3=712+;7?2?5=4\n", "7?2=954+;9?5=4\n", "9?5=445-4=001+\n"]
    assert task.extract_answer(steps) == "+++" and task.is_correct(MODTARGET, steps)
    prompt = task.format_prompt(MODTARGET)
    assert [task.check_step(prompt, steps[:end]) for end in (1, 2, 3)] == [False, True, True]
    assert not derivation_checks(MODTARGET.question, steps)
    assert run_program(task.cot_program(MODTARGET, steps)) == "+++"
    assert task.verification_rationale(MODTARGET, steps) == "3?4=792+ chain no\n"
    assert task.step_labels(MODTARGET, steps) == [False, False, False]
