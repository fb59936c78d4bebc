"""The task interface: problems, prompts, step boundaries, answer extraction and grading."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lm.data import PolicyExample, Problem

SPLITS = ("seed", "train", "test", "ood")
"""seed: worked solutions for the warm start; train: problems searched each round;
test: held-out, same distribution as train; ood: held-out, harder (longer) problems."""


class Task(ABC):
    """A reasoning task whose solutions are sequences of steps ending in `step_delimiter`."""

    name: str = ""
    step_delimiter: str = "\n"
    synthetic: bool = False
    """Synthetic tasks can check every step, so the true step labels are known."""
    default_curriculum_start: int = 0
    """The largest difficulty round 0 searches when `task.curriculum_start` is -1 (0: no schedule)."""

    @abstractmethod
    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        """`count` problems of `split`, the same for the same seed; test problems never appear in train."""

    def format_prompt(self, problem: Problem) -> str:
        """The text the policy continues with its first step."""
        return problem.question + self.step_delimiter

    @abstractmethod
    def is_final_step(self, step_text: str) -> bool:
        """True when the step states the final answer."""

    @abstractmethod
    def extract_answer(self, steps: Sequence[str]) -> str | None:
        """The final answer of a finished solution, or None when it has none."""

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        return answer is not None and answer.strip() == oracle.strip()

    def is_correct(self, problem: Problem, steps: Sequence[str]) -> bool:
        """True when the solution ends in a final step whose answer matches the oracle."""
        if not steps or not self.is_final_step(steps[-1]):
            return False
        return self.check_answer(self.extract_answer(steps), problem.answer)

    def check_step(self, prompt: str, steps: Sequence[str]) -> bool | None:
        """The task's execution check of the last of `steps` under `prompt`: True when what the step computes is
        computed right (recomputed from what the question and the steps state, never from the answer), False when
        not; None for a task without one. A verifier, not part of answer extraction: searches read it only where
        `search.step_check` asks (`has_step_check`)."""
        return None

    @property
    def has_step_check(self) -> bool:
        return type(self).check_step is not Task.check_step

    def difficulty(self, problem: Problem) -> int | None:
        """A problem's length in steps, for per-length metrics and the rounds' difficulty schedule; None when the
        task does not define one."""
        return None

    def reference_steps(self, problem: Problem) -> list[str]:
        """A correct worked solution (synthetic tasks only)."""
        raise NotImplementedError(f"task {self.name!r} has no reference solutions")

    def step_labels(self, problem: Problem, steps: Sequence[str]) -> list[bool]:
        """For each prefix steps[:k+1], whether every step so far is right (synthetic tasks only).

        Steps are compared without surrounding whitespace, as answers are: a final step the sampler
        ended at EOS ("9") has no delimiter, yet is as right as the reference "9\n".
        """
        reference = self.reference_steps(problem)
        labels, still_right = [], True
        for index, step_text in enumerate(steps):
            still_right = (
                still_right and index < len(reference) and step_text.strip() == reference[index].strip()
            )
            labels.append(still_right)
        return labels

    def verification_rationale(self, problem: Problem, steps: Sequence[str]) -> str:
        """A written check of a finished or partial solution, made by the task's own step checker (GenRM's
        verification rationale for algorithmic tasks): one line per step, the step's lookup redone right, then
        `ok` or `no` (see `StepCheck`), ending after the first wrong step. It has no `no` exactly when
        `step_labels(problem, steps)[-1]` is True; the verdict word that follows it is added by the caller.
        Malformed steps are marked `no`, never raised on (synthetic tasks only)."""
        raise NotImplementedError(f"task {self.name!r} has no verification rationales")

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """CoTnPoT's translation of a finished solution into Python source (standard library only, no input) that
        takes the operands and choices the steps state, computes every result itself and prints one line: the
        answer that computation gives, in the form `extract_answer` returns. None when a step cannot be read or
        the solution has no final step (synthetic tasks only)."""
        raise NotImplementedError(f"task {self.name!r} has no chain-of-thought programs")

    def seed_examples(self, count: int, seed: int) -> list[PolicyExample]:
        """Worked solutions of the seed split, the warm start's SFT data."""
        return [
            PolicyExample(problem.id, self.format_prompt(problem), tuple(self.reference_steps(problem)))
            for problem in self.problems("seed", count, seed)
        ]


RIGHT_MARK = "ok"
WRONG_MARK = "no"
"""The last word of each rationale line: the step is right, or it is wrong (and the rationale ends there)."""


@dataclass(frozen=True)
class StepCheck:
    """One step checked: `recomputed` is the step's lookup redone right (no spaces, never a mark word);
    `wrong_part` is None for a right step, "" when the recomputed lookup itself differs from what the step
    wrote, or one word naming the part of the step that is wrong (a copy, a lost target, a step after the end)."""

    recomputed: str
    wrong_part: str | None = None

    def line(self) -> str:
        if self.wrong_part is None:
            return f"{self.recomputed} {RIGHT_MARK}\n"
        return " ".join(filter(None, (self.recomputed, self.wrong_part, WRONG_MARK))) + "\n"


BEYOND_END = StepCheck("end", "")
"""The check of a step written after the solution's last step."""


def rationale_of(checks: Iterable[StepCheck]) -> str:
    """The rationale lines of `checks`, up to and including the first wrong one."""
    lines = []
    for check in checks:
        lines.append(check.line())
        if check.wrong_part is not None:
            break
    return "".join(lines)


def rationale_finds_a_wrong_step(rationale: str) -> bool:
    """True when some line of a rationale is marked `no`."""
    return any(line.split()[-1:] == [WRONG_MARK] for line in rationale.splitlines())


def length_sampler(split: str, low: int, high: int, seed_length_decay: float):
    """Draws a problem length in [low, high]: uniform, except on the seed split, where length n has
    weight seed_length_decay**n (mostly short worked solutions and a few long ones)."""
    lengths = list(range(low, high + 1))
    weights = [seed_length_decay**n if split == "seed" else 1.0 for n in lengths]
    return lambda rng: rng.choices(lengths, weights)[0]


def split_rng(task_name: str, split: str, seed: int) -> random.Random:
    """A random generator private to one (task, split, seed)."""
    return random.Random(f"{task_name}/{split}/{seed}")


def unique_problems(make_one, rng: random.Random, count: int, exclude: set[str], prefix: str) -> list[Problem]:
    """Draw problems from `make_one(rng) -> (question, answer)` until `count` distinct new questions."""
    seen = set(exclude)
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise ValueError(f"cannot draw {count} distinct {prefix} problems; lower the split size")
        question, answer = make_one(rng)
        if question in seen:
            continue
        seen.add(question)
        problems.append(Problem(f"{prefix}-{len(problems):05d}", question, answer))
    return problems


HELD_OUT_POOL = 1000
"""Held-out splits are drawn from a pool of this size, which train and seed problems avoid."""


def draw_split(task: Task, split: str, count: int, seed: int, make_for_split) -> list[Problem]:
    """Problems of one split from `make_for_split(split)(rng) -> (question, answer)`.

    Test and OOD problems are the first `count` of a fixed pool; seed and train problems
    exclude every question of both pools, so no held-out question is ever trained on.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split in ("test", "ood"):
        if count > HELD_OUT_POOL:
            raise ValueError(f"the {split} split holds at most {HELD_OUT_POOL} problems, asked for {count} "
                             f"(--task.{split}_problems)")
        pool = unique_problems(make_for_split(split), split_rng(task.name, split, seed), HELD_OUT_POOL, set(), split)
        return pool[:count]
    exclude = {p.question for s in ("test", "ood") for p in draw_split(task, s, HELD_OUT_POOL, seed, make_for_split)}
    return unique_problems(make_for_split(split), split_rng(task.name, split, seed), count, exclude, split)
