"""Word sorting (as in the GenRM paper), solved by selection sort: each step moves the alphabetically first of the
words left to the end of the sorted words.

Question `ribu sel kato`, steps `kato|ribu sel`, `kato ribu|sel`, `kato ribu sel`: a step writes the sorted words
so far, the word it moves, `|`, and the words left in their order; the final step is the sorted words alone.
- Each line is the whole state: the words a step chooses among are the ones after the `|` of the line just
  before (the question, for the first step), found by the marker rather than at a distance that changes, and the
  word it moved stands right before its own `|`, next to the words it was chosen from.
- Moving one word per step keeps each step one small lookup (the first word alphabetically among at most six
  words of 3-5 letters) plus copies, like last_letter's steps.
Train on 2-4 words, test out of distribution on 5-6, as GenRM does (train up to 4, test on 5). The words of a
problem are distinct, so the sorted order, and so the right path, is unique.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from lm.data import Problem
from rest_mcts.tasks.base import BEYOND_END, StepCheck, Task, draw_split, length_sampler, rationale_of
from rest_mcts.tasks.last_letter import WORDS, make_word


def draw_distinct_words(rng: random.Random, count: int) -> list[str]:
    """`count` distinct pseudo-words, in the order drawn."""
    words: list[str] = []
    while len(words) < count:
        word = make_word(rng)
        if word not in words:
            words.append(word)
    return words


def split_step(step_text: str) -> tuple[str, str | None]:
    """(sorted words, words left) of a step; words left is None for a step without `|` (a final step)."""
    sorted_words, bar, words_left = step_text.strip().partition("|")
    return sorted_words, words_left if bar else None


class WordSortTask(Task):
    name = "word_sort"
    synthetic = True

    def __init__(self, seed_words=(2, 4), train_words=(2, 4), ood_words=(5, 6), seed_length_decay=0.6):
        self.word_counts = {"seed": seed_words, "train": train_words, "test": train_words, "ood": ood_words}
        self.seed_length_decay = seed_length_decay
        """Seed problems of n words have weight decay**n: mostly short worked solutions and a few long ones."""

    def _make_one(self, split: str):
        draw_length = length_sampler(split, *self.word_counts[split], self.seed_length_decay)

        def make(rng: random.Random) -> tuple[str, str]:
            words = draw_distinct_words(rng, draw_length(rng))
            return " ".join(words), " ".join(sorted(words))

        return make

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        return draw_split(self, split, count, seed, self._make_one)

    def reference_steps(self, problem: Problem) -> list[str]:
        """Selection sort: step k moves the k-th word in alphabetical order (Python's string order, so `bat`
        comes before `bata`)."""
        words_left = problem.question.split()
        sorted_words: list[str] = []
        steps = []
        while words_left:
            first = min(words_left)
            words_left = [word for word in words_left if word != first]
            sorted_words.append(first)
            text = " ".join(sorted_words) + ("|" + " ".join(words_left) if words_left else "")
            steps.append(text + self.step_delimiter)
        return steps

    def is_final_step(self, step_text: str) -> bool:
        """The sorted words alone: words and single spaces, no `|`."""
        return WORDS.fullmatch(step_text.strip()) is not None

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if not steps or not self.is_final_step(steps[-1]):
            return None
        return steps[-1].strip()

    # -- verification rationales and programs ----------------------------------------------------------

    def _checks(self, problem: Problem, steps: Sequence[str]) -> Iterator[StepCheck]:
        """Per step: the word it should move, then whether the step has the right form (`|` and the words left
        before the last step, the sorted words alone on it) and moved that word (`no`), carried the sorted words
        before it (`sorted no`) and the words left (`left no`) as the right step does."""
        reference = self.reference_steps(problem)
        for index, step_text in enumerate(steps):
            if index >= len(reference):
                yield BEYOND_END
                continue
            sorted_words, words_left = split_step(step_text)
            right_sorted, right_left = split_step(reference[index])
            first = right_sorted.split(" ")[-1]
            if (words_left is None) != (right_left is None) or sorted_words.split(" ")[-1] != first:
                yield StepCheck(first, "")
            elif sorted_words != right_sorted:
                yield StepCheck(first, "sorted")
            elif words_left != right_left:
                yield StepCheck(first, "left")
            else:
                yield StepCheck(first)

    def verification_rationale(self, problem: Problem, steps: Sequence[str]) -> str:
        """One line per step: the word the step should move, then `ok`, or `no` after the part that is wrong.
        `ribu sel kato` with steps `kato|ribu sel`, `kato sel|ribu`: `kato ok`, `ribu no`."""
        return rationale_of(self._checks(problem, steps))

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """Selection sort over the word lists the steps state: each step's words to choose from are the words
        left by the step before (the question's words for the first step); the program takes the first of them
        alphabetically itself and prints the words it took, joined by spaces. A step that moved a word other
        than the first of the words it stated makes the program disagree."""
        if not steps or not self.is_final_step(steps[-1]):
            return None
        word_lists = [problem.question.split()]
        for step_text in steps[:-1]:
            sorted_words, words_left = split_step(step_text)
            if words_left is None or not WORDS.fullmatch(sorted_words) or not WORDS.fullmatch(words_left):
                return None
            word_lists.append(words_left.split(" "))
        return (f"word_lists = {word_lists!r}\n"
                "# each step moves the alphabetically first of the words left\n"
                "print(' '.join(min(words) for words in word_lists))\n")
