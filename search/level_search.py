"""Level-wise searches MCTS* is compared with at equal token budgets, batched across problems: PRM-guided step-level
beam search (Snell et al., 2024) and Tree-of-Thoughts breadth-first search with the PRM as the state evaluator (Yao
et al., 2023), each optionally scored by a verifier. Models enter only through `propose` and `score`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from search.baselines import Candidate, MethodResult, OpenProblem, advance, drop_over_budget, with_answers
from search.types import (
    AnswerFn,
    Prefix,
    ProposeFn,
    ScoreFn,
    VerifyFn,
    checked_propose,
    checked_verify,
    prm_as_verifier,
)


@dataclass(frozen=True)
class LevelSearchParams:
    """Settings of a level-wise search; see `beam_search` and `tot_bfs` for how each reads them."""

    width: int
    """Beam search: N, the beams sampled at the first level. ToT: b, the states kept per level."""
    branch: int
    """Beam search: M, the candidates each kept beam expands into. ToT: k, proposals per state."""
    max_depth: int
    max_tokens: int = 0
    """Generated tokens per problem (0 = no cap); checked before each level."""

    def __post_init__(self) -> None:
        if self.width < 1 or self.branch < 1 or self.max_depth < 1 or self.max_tokens < 0:
            raise ValueError("width, branch and max_depth must be at least 1 and max_tokens not negative")


def _expand_level(
    problems: list[OpenProblem], propose: ProposeFn, verify: VerifyFn, num_samples: int, dedup: bool, max_depth: int
) -> list[list[Candidate]]:
    """Expand every open candidate of every problem into `num_samples` steps (one propose, one score call).

    Returns per problem its new candidates (finished and open), scored, each carrying its prefix's
    PRM score as the last of its `step_scores`. With `dedup`, a step text already proposed under the
    same parent is dropped (its tokens still count). Empty steps are dropped. Candidates that reach
    max_depth without a final step are dropped: they cannot give an answer.
    """
    requests = [(problem, candidate) for problem in problems for candidate in problem.open]
    new: dict[int, list[Candidate]] = {id(problem): [] for problem in problems}
    if not requests:
        return [new[id(problem)] for problem in problems]
    proposals = checked_propose(
        propose, [Prefix(problem.prompt, candidate.steps) for problem, candidate in requests], num_samples)
    scored: list[tuple[OpenProblem, Candidate]] = []
    for (problem, parent), steps in zip(requests, proposals):
        seen: set[str] = set()
        for step in steps:
            problem.tokens_used += step.num_tokens
            if dedup and step.text in seen:
                continue
            seen.add(step.text)
            child, ended = advance(parent, step, max_depth)
            if child is None or (ended and not child.finished):
                continue
            scored.append((problem, child))
    if scored:
        verdicts = checked_verify(verify, [Prefix(problem.prompt, child.steps) for problem, child in scored])
        for (problem, _), tokens in zip(scored, verdicts.tokens_generated):
            problem.tokens_used += tokens  # what a verifier in the PRM's place wrote (the PRM writes nothing)
        for (problem, child), value in zip(scored, verdicts.scores):
            child.step_scores = child.step_scores + (value,)
            new[id(problem)].append(child)
    return [new[id(problem)] for problem in problems]


def _top(candidates: Sequence[Candidate], count: int) -> list[Candidate]:
    """The `count` candidates with the highest last-step score; ties keep the earlier one."""
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i].step_scores[-1], i))
    return [candidates[i] for i in order[:count]]


def _level_results(
    prompts: Sequence[tuple[str, str]], problems: list[OpenProblem], extract_answer: AnswerFn
) -> list[MethodResult]:
    """Per problem: the finished candidate whose last step the PRM scored highest among those with an answer
    (`with_answers`; ties: earliest)."""
    results = []
    for (problem_id, _), problem in zip(prompts, problems):
        best = _top(list(with_answers(problem.finished, extract_answer)), 1)
        chosen = best[0].steps if best else None
        answer = extract_answer(chosen) if chosen is not None else None
        results.append(MethodResult(problem_id, chosen, answer, problem.tokens_used, problem.finished))
    return results


def beam_search(
    prompts: Sequence[tuple[str, str]],
    propose: ProposeFn,
    score: ScoreFn,
    extract_answer: AnswerFn,
    params: LevelSearchParams,
    verify: VerifyFn | None = None,
) -> list[MethodResult]:
    """PRM-guided step-level beam search (Snell et al., 2024, "Scaling LLM test-time compute").

    Sample N = `width` first steps; score each with the PRM; keep the best N/M (M = `branch`,
    at least one) open beams and expand each into M next steps; repeat. Finished beams leave the
    beam and wait; the search ends when N beams have finished, none is open, or the token cap is
    reached. The answer is the finished beam with the highest last-step PRM score. With `verify`, a verifier
    (e.g. a generative step verifier) scores the beams in the PRM's place and its generated tokens count.
    """
    keep = max(1, params.width // params.branch)

    def select(problem: OpenProblem, children: list[Candidate]) -> None:
        problem.finished.extend(child for child in children if child.finished)
        open_children = [child for child in children if not child.finished]
        problem.open = [] if len(problem.finished) >= params.width else _top(open_children, keep)

    return _level_search(prompts, propose, verify or prm_as_verifier(score), extract_answer, params, params.width,
                         False, select)


def tot_bfs(
    prompts: Sequence[tuple[str, str]],
    propose: ProposeFn,
    score: ScoreFn,
    extract_answer: AnswerFn,
    params: LevelSearchParams,
) -> list[MethodResult]:
    """Tree-of-Thoughts breadth-first search (Yao et al., 2023) with the PRM as the state evaluator.

    Each level, every kept state proposes k = `branch` next steps (duplicates under one state
    dropped); all new states are valued by the PRM and the best b = `width` of them, finished or
    not, are kept; finished states stay kept but are not expanded. The search ends when no kept
    state is open, at max_depth, or at the token cap. The answer is the best-valued finished state
    ever kept.
    """

    def select(problem: OpenProblem, children: list[Candidate]) -> None:
        kept = _top(children, params.width)
        problem.finished.extend(child for child in kept if child.finished)
        problem.open = [child for child in kept if not child.finished]

    return _level_search(prompts, propose, prm_as_verifier(score), extract_answer, params, params.branch, True,
                         select)


def _level_search(prompts, propose, verify: VerifyFn, extract_answer, params: LevelSearchParams, first_samples: int,
                  dedup: bool, select: Callable[[OpenProblem, list[Candidate]], None]) -> list[MethodResult]:
    """The loop beam search and ToT share: expand every open candidate of every problem (the first level
    into `first_samples` steps, later ones into `params.branch`), then let `select` keep some, until
    no problem has an open candidate or its token cap is reached."""
    problems = [OpenProblem(prompt, [Candidate()]) for _, prompt in prompts]
    samples = first_samples
    while True:
        drop_over_budget(problems, params.max_tokens)
        active = [problem for problem in problems if problem.open]
        if not active:
            break
        expanded = _expand_level(active, propose, verify, samples, dedup, params.max_depth)
        for problem, children in zip(active, expanded):
            select(problem, children)
        samples = params.branch
    return _level_results(prompts, problems, extract_answer)
