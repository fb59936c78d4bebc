"""Last-letter concatenation (as in the GenRM paper), solved one word per step.

Question `kato ribu sel`, steps `ribu sel:o`, `sel:ou`, `oul`: each step drops the first
remaining word and appends its last letter after the colon; the final step is the answer alone.
Train on 2-4 words, test out of distribution on 6, as GenRM does.

A verification rationale redoes each step's lookup, the last letter of the word it drops (`kato=o ok`); its
program takes the words the steps drop and computes their last letters itself.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

from lm.data import Problem
from rest_mcts.tasks.base import BEYOND_END, StepCheck, Task, draw_split, length_sampler, rationale_of

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"
WORDS = re.compile(r"[a-z]+(?: [a-z]+)*")
"""Lower-case words joined by single spaces."""
LETTERS = re.compile(r"[a-z]+")


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

    # -- verification rationales and programs ----------------------------------------------------------

    def _checks(self, problem: Problem, steps: Sequence[str]) -> Iterator[StepCheck]:
        """Per step: the word it drops and that word's last letter, then whether the step has the right form
        (words left and `:` before the last step, letters alone on it) and appended that letter (`no`), carried the
        letters before it (`letters no`) and the words left (`left no`) as the right step does."""
        words = problem.question.split()
        reference = self.reference_steps(problem)
        for index, step_text in enumerate(steps):
            if index >= len(reference):
                yield BEYOND_END
                continue
            words_left, letters = _split_step(step_text)
            right_left, right_letters = _split_step(reference[index])
            recomputed = f"{words[index]}={words[index][-1]}"
            if (words_left is None) != (right_left is None) or letters[-1:] != right_letters[-1:]:
                yield StepCheck(recomputed, "")
            elif letters != right_letters:
                yield StepCheck(recomputed, "letters")
            elif words_left != right_left:
                yield StepCheck(recomputed, "left")
            else:
                yield StepCheck(recomputed)

    def verification_rationale(self, problem: Problem, steps: Sequence[str]) -> str:
        """One line per step: the word it drops `=` its last letter, then `ok`, or `no` after the part that is
        wrong. `kato ribu sel` with steps `ribu sel:o`, `sel:oi`: `kato=o ok`, `ribu=u no`."""
        return rationale_of(self._checks(problem, steps))

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """The last letters of the words the steps drop: each step drops the first of the words the step before
        left (the question's first word for the first step); the program takes those words and computes their
        last letters itself. A letter written wrong, or a word miscopied before it is dropped, makes the
        program disagree with the stated letters."""
        if not steps or not self.is_final_step(steps[-1]):
            return None
        words_left = problem.question.split()
        dropped = []
        for step_text in steps[:-1]:
            dropped.append(words_left[0])
            text, letters = _split_step(step_text)
            if text is None or WORDS.fullmatch(text) is None or LETTERS.fullmatch(letters) is None:
                return None
            words_left = text.split(" ")
        dropped.append(words_left[0])
        return (f"dropped = {dropped!r}\n"
                "print(''.join(word[-1] for word in dropped))\n")


def _split_step(step_text: str) -> tuple[str | None, str]:
    """(words left, letters) of a step; words left is None for a step without `:` (a final step)."""
    words_left, colon, letters = step_text.strip().partition(":")
    return (words_left, letters) if colon else (None, words_left)
