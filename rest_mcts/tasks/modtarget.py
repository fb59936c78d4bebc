"""Reach a target digit: put an operation between each pair of single digits so that the chain, evaluated left
to right mod 10, ends at the target. A Countdown with one-digit lookups: writing a step is easy, choosing it
needs lookahead.

Question `3?4?2?5=5`. A step takes the running value and the next digit, writes the three values they give
(+, -, * in that order), chooses one operation, then shows the chain left with the chosen value in front and
the target: `3?4=792+;7?2?5=5` (3+4=7, 3-4=9, 3*4=2; + chosen), `7?2=954-;5?5=5`. The last step writes the
three values, then the target and each value minus the target (mod 10), then chooses: `5?5=005-5=550*` (0-5=5,
0-5=5, 5-5=0; * chosen, whose difference is 0). Nothing follows the last choice. The answer is the operations
the steps state, in order (`+-*`), read as written (`extract_answer` does not check the values), and it is
right when its operations, applied to the question's digits, reach the target. Most problems have several right
answers (six here: `+-*`, `*--`, ...), and a step can be written correctly yet leave a chain from which no choice
reaches the target.

Checking a step is cheaper than writing it: `check_step` redoes the step's values (and a last step's differences)
from the value and digit the step states, and its copy of the chain and target from the step before, as an executed
code step is checked (rStar-Math). It is a verifier, used by searches where `search.step_check` asks, never by the
reader, and it does not look ahead: whether the choice keeps the target reachable is left to the PRM.

Why every value is written before the choice: a value written before the choice is arithmetic only, never the
target copied, and the last choice (take the operation whose difference is 0) and its check read single digits,
which tiny models learn in minutes. With a value written after the last choice, every right solution of the
seed set ends on the target, and a policy trained on them learned to write the target there whatever operation
it had chosen (108 of 200 greedy solutions, 28 of them where a right operation was on offer); neither it nor a
PRM learned to tell, and a PRM does not learn in minutes whether two written digits are equal (docs/tasks.md).

The true label of a prefix is exact: every step so far is written correctly and the target is still reachable
from its value with the remaining digits (brute force over the 3^k choices left). Problems are drawn so that few
of the operation strings reach the target (at most `max_solution_share` of them), so the first guess rarely
works and a search that looks ahead finds what it misses.

A verification rationale redoes each step's values (`3?4=792+ ok`) and names what else is wrong (`chain no`: the
chain or target not carried on; `lost no`: the target no longer reachable, or on the last step missed); its
program takes the digits and operations the steps state and computes whether they reach the stated target.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from lm.data import Problem
from rest_mcts.tasks.base import BEYOND_END, StepCheck, Task, draw_split, length_sampler, rationale_of

OPERATIONS = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10, "*": lambda a, b: (a * b) % 10}
DIGITS = "123456789"


def parse_question(question: str) -> tuple[list[int], int]:
    """The digits and the target of `d?d?...?d=t`; ValueError naming the question if it has another form."""
    chain, separator, target = question.strip().partition("=")
    digits = chain.split("?")
    if not separator or len(digits) < 2 or not all(len(d) == 1 and d in "0123456789" for d in digits + [target]):
        raise ValueError(f"modtarget question {question!r}: expected digits joined by '?' then '=' and a digit")
    return [int(d) for d in digits], int(target)


def apply_operations(digits: Sequence[int], operations: str) -> int:
    """The chain's value mod 10 with `operations[i]` between the running value and digits[i + 1]."""
    value = digits[0]
    for operation, digit in zip(operations, digits[1:], strict=True):
        value = OPERATIONS[operation](value, digit)
    return value


@lru_cache(maxsize=65536)
def reachable(value: int, digits: tuple[int, ...], target: int) -> bool:
    """True when some choice of operations takes `value` through `digits` to `target`."""
    if not digits:
        return value == target
    return any(reachable(apply(value, digits[0]), digits[1:], target) for apply in OPERATIONS.values())


def solutions(digits: Sequence[int], target: int) -> list[str]:
    """Every operation string that takes the chain to `target`, in a fixed order."""
    return ["".join(ops) for ops in itertools.product(OPERATIONS, repeat=len(digits) - 1)
            if apply_operations(digits, "".join(ops)) == target]


STEP = re.compile(r"(?a)^(\d)\?(\d)=(\d)(\d)(\d)([-+*]);((?:\d\?)*\d)=(\d)$")
"""A step before the last: value '?' digit '=', the three values (+, -, *), the chosen operation, ';', the chain
left (the new value first, then the digits still to use), '=', target."""

FINAL_STEP = re.compile(r"(?a)^(\d)\?(\d)=(\d)(\d)(\d)-(\d)=(\d)(\d)(\d)([-+*])$")
"""The last step: value '?' last digit '=', the three values (+, -, *), '-', target, '=', each value minus the
target (mod 10), then the chosen operation. Nothing is written after the choice: the answer is right when the
chosen value's difference is 0."""


def _values(value: int, digit: int) -> str:
    return "".join(str(apply(value, digit)) for apply in OPERATIONS.values())


def _differences(values: str, target: int) -> str:
    return "".join(str((int(v) - target) % 10) for v in values)


def _parsed(text: str):
    """(value, digit, values, operation, chain, target, differences) of a step, or None when it has neither form;
    chain is None and differences a string on the last step."""
    final = FINAL_STEP.match(text.strip())
    if final is not None:
        value, digit, plus, minus, times, target, *differences, operation = final.groups()
        return value, digit, plus + minus + times, operation, None, target, "".join(differences)
    match = STEP.match(text.strip())
    if match is None:
        return None
    value, digit, plus, minus, times, operation, chain, target = match.groups()
    return value, digit, plus + minus + times, operation, chain.split("?"), target, None


def step_executes(question_chain: Sequence[str], question_target: str, steps: Sequence[str]) -> bool:
    """The execution check of the last of `steps`: its three values (and a last step's differences) recomputed from
    the value and digit the step itself states, its chosen value carried into its chain, and its value, digit, chain
    and target those the step before it left (the question's, for the first step). It reads the question and the
    steps only, never the answer: a step that passes may still leave the target unreachable (the choice is the
    lookahead the PRM must judge)."""
    chain, target = list(question_chain), question_target
    for text in steps[:-1]:  # the chain each earlier step left, as written
        parsed = _parsed(text)
        if parsed is None or parsed[4] is None:
            return False
        chain, target = parsed[4], parsed[5]
    parsed = _parsed(steps[-1])
    if parsed is None:
        return False
    value, digit, values, operation, new_chain, written_target, differences = parsed
    if values != _values(int(value), int(digit)) or written_target != target or chain[:2] != [value, digit]:
        return False
    if new_chain is None:  # the last step: exactly two numbers were left, the differences are to the target
        return len(chain) == 2 and differences == _differences(values, int(target))
    written = dict(zip(OPERATIONS, values))
    return len(new_chain) >= 2 and new_chain[0] == written[operation] and new_chain[1:] == chain[2:]


def derivation_checks(question: str, steps: Sequence[str]) -> bool:
    """True when every step of a finished derivation passes `step_executes`: the derivation-wide form of the check,
    for tests and diagnostics."""
    digits, target = parse_question(question)
    chain = [str(d) for d in digits]
    return bool(steps) and FINAL_STEP.match(steps[-1].strip()) is not None and all(
        step_executes(chain, str(target), steps[:index + 1]) for index in range(len(steps)))


class ModTargetTask(Task):
    name = "modtarget"
    synthetic = True
    default_curriculum_start = 3

    def __init__(self, seed_ops=(2, 5), train_ops=(3, 5), ood_ops=(6, 7), seed_length_decay=0.7,
                 max_solution_share=0.15):
        self.operation_counts = {"seed": seed_ops, "train": train_ops, "test": train_ops, "ood": ood_ops}
        for split, (low, high) in self.operation_counts.items():
            if low < 1 or high < low or max_solution_share * 3**high < 1:
                raise ValueError(f"modtarget: {split} operation counts {low}-{high} with max_solution_share "
                                 f"{max_solution_share}: expected 1 <= low <= high and share * 3^high >= 1")
        self.seed_length_decay = seed_length_decay
        self.max_solution_share = max_solution_share
        """A problem's target is drawn among the values that at least one and at most this share of the 3^n
        operation strings reach."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.operation_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            while True:  # lengths whose share allows no target are redrawn; __init__ ensures some length does
                count = draw_length(rng)
                digits = [int(rng.choice(DIGITS)) for _ in range(count + 1)]
                reached: dict[int, int] = {}
                for ops in itertools.product(OPERATIONS, repeat=count):
                    value = apply_operations(digits, "".join(ops))
                    reached[value] = reached.get(value, 0) + 1
                rare = sorted(v for v, n in reached.items() if n <= self.max_solution_share * 3**count)
                if rare:
                    question = "?".join(map(str, digits)) + f"={rng.choice(rare)}"
                    return question, question

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        """The oracle answer of a problem is its question: an answer is checked by applying its operations."""
        return draw_split(self, split, count, seed, self._make_one)

    # -- writing and reading steps --------------------------------------------------------------------

    def _step(self, value: int, operation: str, digits: Sequence[int], target: int) -> tuple[str, int]:
        """The step that applies `operation` to `value` and digits[0] (the last step when no digit follows);
        returns (text, new value)."""
        values = _values(value, digits[0])
        new_value = OPERATIONS[operation](value, digits[0])
        if len(digits) == 1:
            text = f"{value}?{digits[0]}={values}-{target}={_differences(values, target)}{operation}"
        else:
            chain = "?".join(map(str, (new_value, *digits[1:])))
            text = f"{value}?{digits[0]}={values}{operation};{chain}={target}"
        return text + self.step_delimiter, new_value

    def steps_for(self, question: str, operations: str) -> list[str]:
        """The correctly written steps that choose `operations` (which need not reach the target)."""
        digits, target = parse_question(question)
        steps, value = [], digits[0]
        for index, operation in enumerate(operations):
            text, value = self._step(value, operation, digits[index + 1:], target)
            steps.append(text)
        return steps

    def reference_steps(self, problem: Problem) -> list[str]:
        """One right solution, drawn among all of them (fixed per question), so the seed set shows the policy
        every way of reaching a target rather than one preferred operation."""
        digits, target = parse_question(problem.question)
        right = solutions(digits, target)
        if not right:
            raise ValueError(f"modtarget question {problem.question!r}: no operations reach the target")
        choice = random.Random(f"modtarget/{problem.question}").choice(right)
        return self.steps_for(problem.question, choice)

    def is_final_step(self, step_text: str) -> bool:
        """The step takes the last digit: `v?d=abc-t=xyz<op>`."""
        return FINAL_STEP.match(step_text.strip()) is not None

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        """The operations the steps state, in order, when every step has its form and only the last is a last step;
        else None. Read as written: whether the values are right is the step check's business (`check_step`), not
        the reader's."""
        if not steps or not self.is_final_step(steps[-1]):
            return None
        matches = [STEP.match(step.strip()) for step in steps[:-1]]
        if any(match is None for match in matches):
            return None
        return "".join(match.group(6) for match in matches) + steps[-1].strip()[-1]

    def check_step(self, prompt: str, steps: Sequence[str]) -> bool:
        """The execution check of the last of `steps` under `prompt` (`step_executes`); False when the prompt holds
        no modtarget question."""
        try:
            digits, target = parse_question(prompt.strip().splitlines()[-1] if prompt.strip() else "")
        except ValueError:
            return False
        return bool(steps) and step_executes([str(d) for d in digits], str(target), steps)

    def difficulty(self, problem: Problem) -> int:
        """The number of operations."""
        return len(parse_question(problem.question)[0]) - 1

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        """Right when the operations, applied to the oracle question's digits, reach its target."""
        digits, target = parse_question(oracle)
        if answer is None or len(answer.strip()) != len(digits) - 1:
            return False
        operations = answer.strip()
        return all(op in OPERATIONS for op in operations) and apply_operations(digits, operations) == target

    def step_labels(self, problem: Problem, steps: Sequence[str]) -> list[bool]:
        """Per prefix: every step so far is the correctly written step of some operation, and the target is still
        reachable from the prefix's value with the digits left (exact, by enumeration)."""
        digits, target = parse_question(problem.question)
        labels, still_right, value = [], True, digits[0]
        for index, step_text in enumerate(steps):
            if still_right and index < len(digits) - 1:
                written = step_text.strip()
                matches = [(op, *self._step(value, op, digits[index + 1:], target)) for op in OPERATIONS]
                chosen = [(op, new_value) for op, text, new_value in matches if text.strip() == written]
                still_right = bool(chosen)
                if still_right:
                    operation, value = chosen[0]
                    still_right = reachable(value, tuple(digits[index + 2:]), target)
            else:
                still_right = False
            labels.append(still_right)
        return labels

    # -- verification rationales and programs ----------------------------------------------------------

    def _checks(self, problem: Problem, steps: Sequence[str]) -> Iterator[StepCheck]:
        """Per step, from the true running value (every step before it is right): the value and digit it takes
        with their three values (and, on the last step, the target and the differences), followed by the
        operation the step chose. Wrong when the step cannot be read as a step of its kind or a value or
        difference is not the true one (`no`), when it takes another value or digit or carries another chain or
        target (`chain no`), or when its choice leaves the target unreachable (`lost no`; on the last step: the
        chosen value is not the target)."""
        digits, target = parse_question(problem.question)
        value = digits[0]
        for index, step_text in enumerate(steps):
            if index >= len(digits) - 1:
                yield BEYOND_END
                continue
            digit, digits_left = digits[index + 1], digits[index + 2:]
            values = _values(value, digit)
            recomputed = f"{value}?{digit}={values}"
            if not digits_left:
                yield self._check_last(step_text, value, digit, values, target)
                continue
            match = STEP.match(step_text.strip())
            if match is None:
                yield StepCheck(recomputed, "")
                continue
            written_value, written_digit, plus, minus, times, operation, chain, written_target = match.groups()
            recomputed += operation
            new_value = OPERATIONS[operation](value, digit)
            if (written_value, written_digit) != (str(value), str(digit)):
                yield StepCheck(recomputed, "chain")
            elif plus + minus + times != values:
                yield StepCheck(recomputed, "")
            elif chain != "?".join(map(str, (new_value, *digits_left))) or written_target != str(target):
                yield StepCheck(recomputed, "chain")
            elif not reachable(new_value, tuple(digits_left), target):
                yield StepCheck(recomputed, "lost")
            else:
                yield StepCheck(recomputed)
                value = new_value

    @staticmethod
    def _check_last(step_text: str, value: int, digit: int, values: str, target: int) -> StepCheck:
        differences = _differences(values, target)
        recomputed = f"{value}?{digit}={values}-{target}={differences}"
        match = FINAL_STEP.match(step_text.strip())
        if match is None:
            return StepCheck(recomputed, "")
        written_value, written_digit, plus, minus, times, written_target, *written_differences, operation = (
            match.groups())
        recomputed += operation
        if (written_value, written_digit) != (str(value), str(digit)) or written_target != str(target):
            return StepCheck(recomputed, "chain")
        if plus + minus + times != values or "".join(written_differences) != differences:
            return StepCheck(recomputed, "")
        if OPERATIONS[operation](value, digit) != target:
            return StepCheck(recomputed, "lost")
        return StepCheck(recomputed)

    def verification_rationale(self, problem: Problem, steps: Sequence[str]) -> str:
        """One line per step: the values (and differences) the step should write, its chosen operation, then
        `ok`, or `no` after the part that is wrong. `3?4?2?5=4` with steps `3?4=792+;7?2?5=4`, `7?2=954*;4?5=4`:
        `3?4=792+ ok`, `7?2=954* lost no` (from 4, neither 4+5, 4-5 nor 4*5 is 4)."""
        return rationale_of(self._checks(problem, steps))

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """The chain the steps state, evaluated by the program: the first step's value starts it, each step
        applies its chosen operation to the program's value and the digit the step shows (the values the step
        wrote, and the value a later step shows, are not read), and the program prints the operations when its
        value ends at the target the last step states, `none` otherwise: it agrees with the answer read exactly when
        the operations reach the stated target, however the values were written."""
        if not steps or not self.is_final_step(steps[-1]):
            return None
        matches = [STEP.match(step_text.strip()) for step_text in steps[:-1]] + [FINAL_STEP.match(steps[-1].strip())]
        if any(match is None for match in matches):
            return None
        operations = [match.group(6) for match in matches[:-1]] + [matches[-1].group(10)]
        lines = [f"value = {matches[0].group(1)}"]
        for match, operation in zip(matches, operations):
            lines.append(f"value = (value {operation} {match.group(2)}) % 10")
        target = matches[-1].group(6)
        lines.append(f"print({''.join(operations)!r} if value == {target} else 'none')")
        return "\n".join(lines) + "\n"
