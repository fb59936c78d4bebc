"""Modular-arithmetic chains solved by reduction: each step evaluates the leftmost operation mod 10.

Question `3+4*2-5`, steps `7*2-5`, `4-5`, `9` (one per line); the answer is the last digit.
Each step is a small lookup (one single-digit operation) plus a copy, which a 1M-parameter
model learns in minutes, while longer chains than the seed set shows are where it fails and
where search finds new, verifiable solutions.
"""

from __future__ import annotations

import random
from typing import Sequence

from rest_mcts.data import Problem
from rest_mcts.tasks.base import Task, draw_split, length_sampler

OPERATIONS = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10, "*": lambda a, b: (a * b) % 10}


def reduce_once(expression: str) -> str:
    """Evaluate the leftmost `digit op digit` of an expression mod 10 and keep the rest."""
    value = OPERATIONS[expression[1]](int(expression[0]), int(expression[2]))
    return f"{value}{expression[3:]}"


class ModChainTask(Task):
    name = "modchain"
    synthetic = True

    def __init__(self, seed_ops=(1, 5), train_ops=(2, 5), ood_ops=(6, 7), seed_length_decay=0.5):
        self.operation_counts = {"seed": seed_ops, "train": train_ops, "test": train_ops, "ood": ood_ops}
        self.seed_length_decay = seed_length_decay
        """Seed problems with n operations are drawn with weight decay**n: mostly short worked
        solutions and a few long ones, so the warm-started policy has seen the long format but is
        unsure of it; search and verification then supply the long solutions it lacks."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.operation_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            count = draw_length(rng)
            question = str(rng.randint(0, 9)) + "".join(
                rng.choice("+-*") + str(rng.randint(0, 9)) for _ in range(count)
            )
            expression = question
            while len(expression) > 1:
                expression = reduce_once(expression)
            return question, expression

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        return draw_split(self, split, count, seed, self._make_one)

    def reference_steps(self, problem: Problem) -> list[str]:
        steps, expression = [], problem.question
        while len(expression) > 1:
            expression = reduce_once(expression)
            steps.append(expression + self.step_delimiter)
        return steps

    def is_final_step(self, step_text: str) -> bool:
        text = step_text.strip()
        return len(text) == 1 and text.isdigit()

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return steps[-1].strip()
