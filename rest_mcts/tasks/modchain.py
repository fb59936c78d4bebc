"""Modular-arithmetic chains of single digits, solved by reduction: each step evaluates the leftmost
operation mod 10 and copies the rest.

A step first shows the operation it evaluates, then the reduced chain, then a record of every value
computed so far; the answer is the record. Question `3+4*2-5`, steps `3+4=7;7*2-5:7`,
`7*2=4;4-5:74`, `4-5=9;749` (one per line).
- Shown operation: the lookup `3+4=` -> `7` reads the three characters just before it, the same
  way at every step; without it the operands sit at the start of the previous line, at a distance
  that changes from step to step, and a tiny policy learns the lookup far less reliably.
- Record: a wrong value stays in the answer, so a right answer reached through wrong steps is rare;
  with the last value alone as the answer, a wrong chain lands on the right digit one time in ten.
Both choices were measured against their alternatives: docs/tasks.md.

One digit per number keeps each step one single-digit lookup plus a copy, which a 1M-parameter
model learns in minutes.

A verification rationale redoes each step's lookup (`7*2=4 ok`); its program takes the operations the steps
show and computes their values itself.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

from lm.data import Problem
from rest_mcts.tasks.base import BEYOND_END, StepCheck, Task, draw_split, length_sampler, rationale_of

OPERATIONS = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10, "*": lambda a, b: (a * b) % 10}

SHOWN_OPERATION = re.compile(r"([0-9])([-+*])([0-9])=([0-9]);(.*)", re.DOTALL)
"""A step's shown operation, its value, and what follows the `;` (the chain left and the record, or the record)."""
STEP_FORM = re.compile(r"[0-9][-+*][0-9]=[0-9];(?:[0-9](?:[-+*][0-9])+:)?[0-9]+")
"""A readable step: the shown operation and value, `;`, then the chain left and `:` (before the last step) and the
record."""


def reduce_once(expression: str) -> str:
    """Evaluate the leftmost `digit op digit` of an expression mod 10; keep the rest."""
    left, operation, right = expression[0], expression[1], expression[2]
    return str(OPERATIONS[operation](int(left), int(right))) + expression[3:]


class ModChainTask(Task):
    name = "modchain"
    synthetic = True

    def __init__(self, seed_ops=(1, 6), train_ops=(4, 6), ood_ops=(7, 8), seed_length_decay=0.65):
        self.operation_counts = {"seed": seed_ops, "train": train_ops, "test": train_ops, "ood": ood_ops}
        self.seed_length_decay = seed_length_decay
        """Seed problems with n operations are drawn with weight decay**n: mostly short worked
        solutions and a few long ones, so the warm-started policy has seen the long format but is
        unsure of it; search and verification then supply the long solutions it lacks."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.operation_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            count = draw_length(rng)
            first_digit = str(rng.randint(0, 9))
            question = first_digit + "".join(rng.choice("+-*") + str(rng.randint(0, 9)) for _ in range(count))
            return question, self.extract_answer(self.reference_steps(Problem("", question, "")))

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        return draw_split(self, split, count, seed, self._make_one)

    def reference_steps(self, problem: Problem) -> list[str]:
        steps, expression, record = [], problem.question, ""
        while len(expression) > 1:
            operation = expression[:3]
            expression = reduce_once(expression)
            value = expression[0]
            record += value
            # The last step has no chain left to copy: the record alone is the answer.
            result = f"{expression}:{record}" if len(expression) > 1 else record
            steps.append(f"{operation}={value};{result}{self.step_delimiter}")
        return steps

    def _result(self, step_text: str) -> str:
        """What a step leaves after its shown operation (the reduced chain and record, or the answer)."""
        return step_text.strip().rsplit(";", 1)[-1]

    def is_final_step(self, step_text: str) -> bool:
        return self._result(step_text).isdigit()

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return self._result(steps[-1])

    # -- verification rationales and programs ----------------------------------------------------------

    def _checks(self, problem: Problem, steps: Sequence[str]) -> Iterator[StepCheck]:
        """Per step: the operation it should evaluate and its value, then whether the step showed that operation
        with that value (`no`), the chain left (`chain no`) and the record (`record no`) as the right step does."""
        reference = self.reference_steps(problem)
        for index, step_text in enumerate(steps):
            if index >= len(reference):
                yield BEYOND_END
                continue
            right = SHOWN_OPERATION.fullmatch(reference[index].strip())
            written = SHOWN_OPERATION.fullmatch(step_text.strip())
            recomputed = reference[index].strip()[:5]
            if written is None or written.groups()[:4] != right.groups()[:4]:
                yield StepCheck(recomputed, "")
                continue
            chain, colon, record = written.group(5).rpartition(":")
            right_chain, right_colon, right_record = right.group(5).rpartition(":")
            if (chain, colon) != (right_chain, right_colon):
                yield StepCheck(recomputed, "chain")
            elif record != right_record:
                yield StepCheck(recomputed, "record")
            else:
                yield StepCheck(recomputed)

    def verification_rationale(self, problem: Problem, steps: Sequence[str]) -> str:
        """One line per step: the operation it should evaluate `=` its value, then `ok`, or `no` after the part
        that is wrong. `3+4*2-5` with steps `3+4=7;7*2-5:7`, `7*2=5;5-5:75`: `3+4=7 ok`, `7*2=4 no`."""
        return rationale_of(self._checks(problem, steps))

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """The operations the steps show, evaluated by the program: the first step's left digit starts the
        running value, each step applies its shown operation and right digit to the value the program computed
        (the left digit a later step shows is not read), and the program prints the record of its values. A
        value written wrong and carried on, a shown operation that is not the chain's, or a skipped step makes
        it disagree with the stated record."""
        if not steps or not self.is_final_step(steps[-1]):
            return None
        if not all(STEP_FORM.fullmatch(step_text.strip()) for step_text in steps):
            return None
        shown = [SHOWN_OPERATION.fullmatch(step_text.strip()) for step_text in steps]
        lines = [f"value = {shown[0].group(1)}", "record = ''"]
        for match in shown:
            lines += [f"value = (value {match.group(2)} {match.group(3)}) % 10", "record += str(value)"]
        return "\n".join(lines + ["print(record)"]) + "\n"
