"""Last-letter concatenation (as in the GenRM paper), solved one word per step.

Question `kato ribu sel`, steps `ribu sel:o`, `sel:ou`, `oul`: each step drops the first
remaining word and appends its last letter after the colon; the final step is the answer alone.
Train on 2-4 words, test out of distribution on 6, as GenRM does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rest_mcts.data import Problem
from rest_mcts.tasks.base import Task, draw_split, length_sampler

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"


def make_word(rng: random.Random) -> str:
    """A pronounceable 3-5 letter pseudo-word (a fixed word list would be a licensed file)."""
    length = rng.randint(3, 5)
    return "".join(rng.choice(CONSONANTS if i % 2 == 0 else VOWELS) for i in range(length))


class LastLetterTask(Task):
    name = "last_letter"
    synthetic = True

    def __init__(self, seed_words=(1, 5), train_words=(2, 5), ood_words=(6, 7), seed_length_decay=0.6):
        self.word_counts = {"seed": seed_words, "train": train_words, "test": train_words, "ood": ood_words}
        self.seed_length_decay = seed_length_decay
        """Seed problems of n words have weight decay**n: mostly short worked solutions and a few
        long ones, so the warm-started policy has seen long problems but is unsure of them."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.word_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            words = [make_word(rng) for _ in range(draw_length(rng))]
            return " ".join(words), "".join(word[-1] for word in words)

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        return draw_split(self, split, count, seed, self._make_one)

    def reference_steps(self, problem: Problem) -> list[str]:
        words = problem.question.split()
        steps = []
        for index in range(1, len(words) + 1):
            letters = "".join(word[-1] for word in words[:index])
            rest = " ".join(words[index:])
            steps.append((f"{rest}:{letters}" if rest else letters) + self.step_delimiter)
        return steps

    def is_final_step(self, step_text: str) -> bool:
        text = step_text.strip()
        return bool(text) and ":" not in text and text.isalpha()

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return steps[-1].strip()
