"""CoTnPoT (Liang et al., 2024, "Improving LLM reasoning through scaling inference computation with collaborative
verification"): translate each chain of thought into a program, run it in the sandbox, and drop the solutions whose
program prints another answer than the one they state, before any verifier ranks the rest.

Synthetic tasks translate their steps deterministically (`Task.cot_program`: the program takes the operations the
steps state and computes their results itself). A solution that cannot be translated, or whose program fails, times
out or prints nothing, is dropped too: nothing confirms its answer. Where no sandbox isolates the filesystem and
network, the check refuses to run programs unless the run accepts the weaker sandbox (`sandbox.allow_unisolated`); each
check records what the sandbox did not enforce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lm.data import Problem
from rest_mcts.sandbox import SandboxLimits, run_many
from rest_mcts.sandbox_types import ISOLATING
from rest_mcts.tasks import Task


@dataclass(frozen=True)
class ProgramCheck:
    """One solution's check: whether it is kept, and why."""

    kept: bool
    reason: str
    """'agrees', 'disagrees' (the program printed another answer), 'no_answer' (the solution states none),
    'untranslatable' (no program), or the sandbox status of a program that did not end ok."""
    program_answer: str | None = None
    sandbox_not_enforced: tuple[str, ...] = ()
    """The sandbox protections that did not hold for its program (`SandboxResult.not_enforced`); empty when no
    program ran."""

    @property
    def unisolated(self) -> bool:
        """Its program ran in a sandbox without filesystem and network isolation (`sandbox_types.ISOLATING`)."""
        return any(protection in self.sandbox_not_enforced for protection in ISOLATING)


def check_solutions(task: Task, solutions: Sequence[tuple[Problem, Sequence[str]]],
                    limits: SandboxLimits | None = None, workers: int = 4,
                    allow_unisolated: bool = False) -> list[ProgramCheck]:
    """CoTnPoT's check of each (problem, steps): its program run in the sandbox (all programs in one `run_many`),
    the last printed line compared with the solution's stated answer (both in `extract_answer`'s form).

    allow_unisolated: run the programs even where no sandbox isolates the filesystem and network (else
    `sandbox.SandboxUnavailable`); each check's `sandbox_not_enforced` says what did not hold."""
    limits = limits or SandboxLimits(timeout_seconds=5.0, memory_mb=256, max_processes=8, max_output_kb=16)
    checks: list[ProgramCheck | None] = [None] * len(solutions)
    to_run: list[tuple[int, str]] = []
    for index, (problem, steps) in enumerate(solutions):
        if task.extract_answer(steps) is None:
            checks[index] = ProgramCheck(False, "no_answer")
            continue
        program = task.cot_program(problem, steps)
        if program is None:
            checks[index] = ProgramCheck(False, "untranslatable")
        else:
            to_run.append((index, program))
    results = run_many([program for _, program in to_run], limits, workers=workers,
                       allow_unisolated=allow_unisolated) if to_run else []
    for (index, _), result in zip(to_run, results, strict=True):
        if result.status != "ok":
            checks[index] = ProgramCheck(False, result.status, sandbox_not_enforced=result.not_enforced)
            continue
        lines = result.stdout.strip().splitlines()
        printed = lines[-1].strip() if lines else None
        stated = task.extract_answer(solutions[index][1])
        agrees = printed is not None and printed == stated.strip()
        checks[index] = ProgramCheck(agrees, "agrees" if agrees else "disagrees", printed, result.not_enforced)
    return checks  # type: ignore[return-value]


def kept_or_all(kept: Sequence[bool]) -> list[int]:
    """Indices of the kept solutions, or of all of them when the filter keeps none (the verifier then ranks them
    all, as it would without the filter)."""
    indices = [index for index, keep in enumerate(kept) if keep]
    return indices or list(range(len(kept)))
