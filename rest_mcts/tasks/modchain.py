"""Modular-arithmetic chains solved by reduction: each step evaluates the leftmost operation,
digit by digit mod 10, and copies the rest.

The default step first shows the operation it evaluates, then the reduced chain, then a record
of every value computed so far; the answer is the record. Question `3+4*2-5`, steps
`3+4=7;7*2-5:7`, `7*2=4;4-5:74`, `4-5=9;749` (one per line).
- Shown operation (`show_operation`): the lookup `3+4=` -> `7` reads the three characters just
  before it, the same way at every step. Without it (`7*2-5:7`, ...) the operands sit at the start
  of the previous line, at a distance that changes from step to step; the default policy then got
  only 19% of 3-operation test problems right after its warm start, against 98-100% with it.
- Record (`record`): a wrong value stays in the answer, so a right answer reached through wrong
  steps is rare (85-95% of verified traces had every step right, against 34-59% when the answer
  was the last value alone, which lands on the right digit one time in ten).
Without both: steps `7*2-5`, `4-5`, `9`; the answer is the last number.

Width 1 (the default) has one digit per number. Each step is one single-digit lookup plus a copy,
which a 1M-parameter model learns in minutes. Width 2: question `37+21*45`, steps
`37+21=58;58*45:58`, `58*45=00;5800`, each digit its own mod-10 lane.
"""

from __future__ import annotations

import random
from typing import Sequence

from rest_mcts.data import Problem
from rest_mcts.tasks.base import Task, draw_split, length_sampler

OPERATIONS = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10, "*": lambda a, b: (a * b) % 10}


def reduce_once(expression: str, width: int = 1) -> str:
    """Evaluate the leftmost `number op number` of an expression digit by digit mod 10; keep the rest."""
    left, operation, right = expression[:width], expression[width], expression[width + 1 : 2 * width + 1]
    value = "".join(str(OPERATIONS[operation](int(a), int(b))) for a, b in zip(left, right))
    return value + expression[2 * width + 1 :]


class ModChainTask(Task):
    name = "modchain"
    synthetic = True

    def __init__(
        self, width=1, seed_ops=(1, 6), train_ops=(4, 6), ood_ops=(7, 8), seed_length_decay=0.65, record=True,
        show_operation=True,
    ):
        self.width = width
        """Digits per number (independent mod-10 lanes)."""
        self.record = record
        """Each step appends its value to a record after ':', and the answer is the whole record."""
        self.show_operation = show_operation
        """Each step first writes the operation it evaluates, `a op b=v;`, then the reduced chain, so the
        lookup reads the three characters just before it instead of the previous line's start."""
        self.operation_counts = {"seed": seed_ops, "train": train_ops, "test": train_ops, "ood": ood_ops}
        self.seed_length_decay = seed_length_decay
        """Seed problems with n operations are drawn with weight decay**n: mostly short worked
        solutions and a few long ones, so the warm-started policy has seen the long format but is
        unsure of it; search and verification then supply the long solutions it lacks."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.operation_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            count = draw_length(rng)
            number = lambda: "".join(str(rng.randint(0, 9)) for _ in range(self.width))  # noqa: E731
            question = number() + "".join(rng.choice("+-*") + number() for _ in range(count))
            return question, self.extract_answer(self.reference_steps(Problem("", question, "")))

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        return draw_split(self, split, count, seed, self._make_one)

    def reference_steps(self, problem: Problem) -> list[str]:
        steps, expression, record = [], problem.question, ""
        while len(expression) > self.width:
            operation = expression[: 2 * self.width + 1]
            expression = reduce_once(expression, self.width)
            record += expression[: self.width]
            shown = f"{operation}={expression[: self.width]};" if self.show_operation else ""
            if not self.record:
                steps.append(shown + expression + self.step_delimiter)
            elif len(expression) > self.width:
                steps.append(f"{shown}{expression}:{record}{self.step_delimiter}")
            else:
                steps.append(shown + record + self.step_delimiter)
        return steps

    def _result(self, step_text: str) -> str:
        """What a step leaves after its shown operation (the reduced chain, record or answer)."""
        text = step_text.strip()
        return text.rsplit(";", 1)[-1] if self.show_operation else text

    def is_final_step(self, step_text: str) -> bool:
        text = self._result(step_text)
        if self.record:
            return bool(text) and text.isdigit()
        return len(text) == self.width and text.isdigit()

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return self._result(steps[-1])
