"""Reach a target digit: put an operation between each pair of single digits so that the chain, evaluated left
to right mod 10, ends at the target. A Countdown with one-digit lookups: writing a step is easy, choosing it
needs lookahead.

Question `3?4?2?5=5`. A step applies one chosen operation to the running value and the next digit, then shows
what is left and the operations chosen so far: `3+4=7;7?2?5=5:+`, `7-2=5;5?5=5:+-`. The final step shows the last
value and the answer, the operation string: `5*5=5;+-*`. The answer stands only on a derivation whose every
written operation is right and whose steps carry the chain and the record on faithfully (checked from the steps
alone); it is right when its operations, applied to the question's digits, reach the target. Most problems have
several right answers (`+-*` and `---` here), and a step can be written correctly yet leave a chain from which no
choice reaches the target. Without the derivation check a policy that writes the target as its last value
whatever the arithmetic gives would be right by luck one time in ten and teach the PRM nothing at the last step.

The true label of a prefix is exact: every step so far is written correctly and the target is still reachable
from its value with the remaining digits (brute force over the 3^k choices left). Problems are drawn so that few
of the operation strings reach the target (at most `max_solution_share` of them), so guessing rarely works and a
search that looks ahead finds what the policy's first guess misses.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from functools import lru_cache

from rest_mcts.data import Problem
from rest_mcts.tasks.base import Task, draw_split, length_sampler

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


STEP = re.compile(r"^(\d)([-+*])(\d)=(\d);(?:((?:\d\?)+\d)=(\d):([-+*]+)|([-+*]+))$")
"""A step: value, operation, digit, '=', result, ';', then the chain left, '=', target, ':', record (or, on the
final step, the record alone)."""


def derivation_checks(steps: Sequence[str]) -> bool:
    """True when every step's operation is computed right and each step carries on the chain, target and record
    the step before it left: checked from the steps alone, so an answer is read only from an honest derivation."""
    chain: list[str] | None = None
    target = record = None
    for index, text in enumerate(steps):
        match = STEP.match(text.strip())
        if match is None:
            return False
        value, operation, digit, result, rest, new_target, new_record, final_record = match.groups()
        if OPERATIONS[operation](int(value), int(digit)) != int(result):
            return False
        if chain is not None and (chain[:2] != [value, digit]):
            return False
        if (new_record or final_record) != (record or "") + operation:
            return False
        last = index == len(steps) - 1
        if final_record is not None:
            return last and (chain is None or len(chain) == 2)
        new_chain = rest.split("?")
        if new_chain[0] != result or (chain is not None and (new_chain[1:] != chain[2:] or new_target != target)):
            return False
        chain, target, record = new_chain, new_target, new_record
    return False


class ModTargetTask(Task):
    name = "modtarget"
    synthetic = True

    def __init__(self, seed_ops=(2, 5), train_ops=(3, 5), ood_ops=(6, 7), seed_length_decay=0.8,
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

    def _step(self, value: int, operation: str, digits: Sequence[int], target: int, record: str) -> tuple[str, int]:
        """The step that applies `operation` to `value` and digits[0]; returns (text, new value)."""
        new_value = OPERATIONS[operation](value, digits[0])
        record += operation
        rest = digits[1:]
        tail = ("?".join(map(str, (new_value, *rest))) + f"={target}:{record}") if rest else record
        return f"{value}{operation}{digits[0]}={new_value};{tail}{self.step_delimiter}", new_value

    def steps_for(self, question: str, operations: str) -> list[str]:
        """The correctly written steps that choose `operations` (which need not reach the target)."""
        digits, target = parse_question(question)
        steps, value = [], digits[0]
        for index, operation in enumerate(operations):
            text, value = self._step(value, operation, digits[index + 1:], target, operations[:index])
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

    def _result(self, step_text: str) -> str:
        return step_text.strip().rsplit(";", 1)[-1]

    def is_final_step(self, step_text: str) -> bool:
        result = self._result(step_text)
        return bool(result) and all(character in OPERATIONS for character in result)

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        """The operation string of a finished derivation that checks (`derivation_checks`), else None."""
        if not steps or not self.is_final_step(steps[-1]) or not derivation_checks(steps):
            return None
        return self._result(steps[-1])

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
        labels, still_right, value, record = [], True, digits[0], ""
        for index, step_text in enumerate(steps):
            if still_right and index < len(digits) - 1:
                written = step_text.strip()
                matches = [(op, *self._step(value, op, digits[index + 1:], target, record)) for op in OPERATIONS]
                chosen = [(op, new_value) for op, text, new_value in matches if text.strip() == written]
                still_right = bool(chosen)
                if still_right:
                    operation, value = chosen[0]
                    record += operation
                    still_right = reachable(value, tuple(digits[index + 2:]), target)
            else:
                still_right = False
            labels.append(still_right)
        return labels
