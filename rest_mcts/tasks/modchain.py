"""Modular-arithmetic chains solved by reduction: each step evaluates the leftmost operation,
digit by digit mod 10, and copies the rest.

With `record` (the default) each step also appends the value it computed to a record after a
colon, and the answer is the record of every intermediate value: question `3+4*2-5`, steps
`7*2-5:7`, `4-5:74`, `749` (one per line). A wrong value stays in the answer, so a right answer
reached through wrong steps is rare: on the default run, 85-95% of verified traces had every step
right (the rest carried copy slips in the expression that later steps ignored), against 34-59%
when the answer was the last value alone, which lands on the right digit one time in ten.
Without `record`: steps `7*2-5`, `4-5`, `9`; the answer is the last number.

Width 1 (the default) has one digit per number. Each step is one single-digit lookup plus a copy,
which a 1M-parameter model learns in minutes. Width 2: question `37+21*45`, steps `58*45`, `00`,
each digit its own mod-10 lane; the default policy did not learn it within the default budget
(SFT loss 0.94 after 400 steps).
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
        self, width=1, seed_ops=(1, 5), train_ops=(2, 5), ood_ops=(6, 7), seed_length_decay=0.5, record=True
    ):
        self.width = width
        """Digits per number (independent mod-10 lanes)."""
        self.record = record
        """Each step appends its value to a record after ':', and the answer is the whole record."""
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
            expression = reduce_once(expression, self.width)
            record += expression[: self.width]
            if not self.record:
                steps.append(expression + self.step_delimiter)
            elif len(expression) > self.width:
                steps.append(f"{expression}:{record}{self.step_delimiter}")
            else:
                steps.append(record + self.step_delimiter)
        return steps

    def is_final_step(self, step_text: str) -> bool:
        text = step_text.strip()
        if self.record:
            return bool(text) and text.isdigit()
        return len(text) == self.width and text.isdigit()

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return steps[-1].strip()
