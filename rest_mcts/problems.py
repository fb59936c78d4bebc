"""The problems of a run, drawn from its task and configuration: the seed solutions, the training pool each round
searches (within the round's difficulty), the dev problems held out of it, and the held-out evaluation splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lm.data import PolicyExample, Problem
from rest_mcts.config import RunConfig
from rest_mcts.tasks import Task


@dataclass(frozen=True)
class RunProblems:
    """The problems of a run: seed solutions, the training pool the rounds search, the dev problems held out of
    it, and the held-out evaluation splits."""

    seed_examples: list[PolicyExample]
    train: list[Problem]
    dev: list[Problem]
    """The end of the pool, never searched for training: each evaluation picks MCTS*'s answer margin on them."""
    held_out: dict[str, list[Problem]]
    max_difficulty: Callable[[int], int | None] = lambda _round_index: None
    """The largest difficulty a round may search (None: any), the task section's schedule."""
    difficulty: Callable[[Problem], int | None] = lambda _problem: None

    @classmethod
    def of(cls, config: RunConfig, task: Task) -> RunProblems:
        data_seed = config.task.data_seed
        pool = task.problems("train", config.task.train_problems, data_seed)
        dev_count = config.eval.dev_problems
        start = config.task.curriculum_start
        start = task.default_curriculum_start if start == -1 else start
        step = config.task.curriculum_step
        return cls(
            seed_examples=task.seed_examples(config.task.seed_problems, data_seed),
            train=pool[:len(pool) - dev_count],
            dev=pool[len(pool) - dev_count:],
            held_out={split: problems for split, problems in (
                ("test", task.problems("test", config.task.test_problems, data_seed)),
                ("ood", task.problems("ood", config.task.ood_problems, data_seed))) if problems},
            max_difficulty=(lambda r: start + r * step) if start > 0 else (lambda _r: None),
            difficulty=task.difficulty,
        )

    def eligible(self, round_index: int) -> list[Problem]:
        """The training problems within round `round_index`'s difficulty, in pool order."""
        limit = self.max_difficulty(round_index)
        return [p for p in self.train if limit is None or (self.difficulty(p) or 0) <= limit]

    def for_round(self, round_index: int, count: int) -> list[Problem]:
        """`count` training problems for round `round_index`, in pool order: those no earlier round searched first
        (then those earlier rounds searched fewest times, so that once all are used the rounds cycle through the
        pool: without a schedule, consecutive slices wrapping around), among the problems within the round's
        difficulty; never one problem twice in a round."""
        searched: dict[str, int] = {}
        for index in range(round_index + 1):
            chosen = sorted(self.eligible(index), key=lambda p: searched.get(p.id, 0))[:count]  # stable: pool order
            for p in chosen:
                searched[p.id] = searched.get(p.id, 0) + 1
        return chosen
