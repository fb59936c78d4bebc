"""The small types through which language models enter the search: prefixes in, steps and scores out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Prefix:
    """A partial solution: the problem's prompt and the steps taken so far (each ending in its delimiter)."""

    prompt: str
    steps: tuple[str, ...] = ()

    def extend(self, step_text: str) -> Prefix:
        return Prefix(self.prompt, self.steps + (step_text,))


@dataclass(frozen=True)
class ProposedStep:
    """One sampled next step."""

    text: str
    """The step text, including its delimiter (or without one if generation ended the solution)."""
    num_tokens: int
    """Tokens the sampler generated for this step (counted against the token budget)."""
    is_final: bool
    """True when the step holds a final answer or ended the solution (a terminal node)."""


ProposeFn = Callable[[Sequence[Prefix], int], list[list[ProposedStep]]]
"""propose(prefixes, num_samples) -> for each prefix, `num_samples` sampled next steps (may repeat)."""

ScoreFn = Callable[[Sequence[Prefix]], list[float]]
"""score(prefixes) -> the PRM value in [0, 1] of each prefix's last step."""

GreedyFn = Callable[[Sequence[Prefix]], list[ProposedStep]]
"""greedy(prefixes) -> the argmax next step of each prefix."""

CheckFn = Callable[[Sequence[Prefix]], list[bool]]
"""check(prefixes) -> whether each prefix's last step passes an execution check (its computation redone from what
the prefix states; rStar-Math's executed code steps). A step that fails is pruned."""

@dataclass(frozen=True)
class VerifierScores:
    """What a verifier returns for a batch of (finished or partial) solutions, one entry per solution in order."""

    scores: list[float]
    """In [0, 1]: higher means more likely correct."""
    tokens_generated: list[int]
    """Tokens the verifier generated for the solution (the checks it wrote, the verdicts it read)."""
    tokens_read: list[int]
    """Tokens of problem and solution it read (prompt processing), once per pass over them."""

    def __post_init__(self) -> None:
        if not len(self.scores) == len(self.tokens_generated) == len(self.tokens_read):
            raise ValueError("a verifier must give one score and one token count per solution")


VerifyFn = Callable[[Sequence[Prefix]], VerifierScores]
"""verify(solutions) -> their scores and the verifier's token counts."""

AnswerFn = Callable[[Sequence[str]], "str | None"]
"""extract_answer(steps) -> the final answer of a finished solution, or None."""

Solution = TypeVar("Solution")


def readable_first(solutions: Sequence[Solution], steps_of: Callable[[Solution], Sequence[str]],
                   extract_answer: AnswerFn | None) -> Sequence[Solution]:
    """The solutions whose answer can be read, or all of them when none can (or no reader is given): a solution
    with no answer is never picked over one that has an answer, as a vote never counts it."""
    if extract_answer is None:
        return solutions
    readable = [solution for solution in solutions if extract_answer(steps_of(solution)) is not None]
    return readable or solutions


def checked_propose(propose: ProposeFn, prefixes: Sequence[Prefix], num_samples: int) -> list[list[ProposedStep]]:
    """`propose(prefixes, num_samples)`, refusing an answer that does not give one list per prefix."""
    proposals = propose(prefixes, num_samples)
    if len(proposals) != len(prefixes):
        raise ValueError(f"propose returned {len(proposals)} lists for {len(prefixes)} prefixes")
    return proposals


def checked_score(score: ScoreFn, prefixes: Sequence[Prefix]) -> list[float]:
    """`score(prefixes)` as floats, refusing an answer that does not give one value per prefix."""
    scores = score(prefixes)
    if len(scores) != len(prefixes):
        raise ValueError(f"score returned {len(scores)} values for {len(prefixes)} prefixes")
    return [float(value) for value in scores]


def checked_verify(verify: VerifyFn, prefixes: Sequence[Prefix]) -> VerifierScores:
    """`verify(prefixes)`, refusing an answer that does not give one score per prefix."""
    if not prefixes:
        return VerifierScores([], [], [])
    verdicts = verify(prefixes)
    if len(verdicts.scores) != len(prefixes):
        raise ValueError(f"verify returned {len(verdicts.scores)} scores for {len(prefixes)} solutions")
    return verdicts


def prm_as_verifier(score: ScoreFn) -> VerifyFn:
    """A PRM's `score` where a verifier is expected: its values, with no tokens generated (the PRM writes nothing)."""

    def verify(prefixes: Sequence[Prefix]) -> VerifierScores:
        values = checked_score(score, prefixes)
        return VerifierScores(values, [0] * len(values), [0] * len(values))

    return verify
