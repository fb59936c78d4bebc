"""The methods MCTS* is compared with at equal token budgets, batched across problems like MCTS*.

Greedy chain-of-thought; N sampled solutions read by self-consistency (majority vote), Best-of-N
ranked by the PRM (step scores aggregated by min, product, last step or mean), a PRM-weighted
majority vote, and pass@N (oracle, the ceiling); beam search and Tree-of-Thoughts are in
`search.level_search`. Models enter only through `propose`, `greedy` and `score` (search/types.py), so tests use
deterministic fakes. Every method counts the tokens it generates; `max_tokens` caps them per
problem and is checked before each expansion, so a problem ends at most one expansion (one
batched step of its open candidates) past its cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from search.types import (
    AnswerFn,
    GreedyFn,
    Prefix,
    ProposedStep,
    ProposeFn,
    ScoreFn,
    VerifyFn,
    checked_propose,
    checked_score,
    checked_verify,
    readable_first,
)

AGGREGATIONS = ("min", "prod", "last", "mean")
"""How Best-of-N and the weighted vote turn a solution's step scores into one score."""


@dataclass
class Candidate:
    """One (partial or finished) solution of a problem."""

    steps: tuple[str, ...] = ()
    step_scores: tuple[float, ...] = ()
    """PRM score of each prefix steps[:i+1]; empty until scored."""
    finished: bool = False
    """The last step is final (holds an answer or ended the solution)."""
    verifier_scores: dict[str, float] = field(default_factory=dict)
    """Score of the whole solution by each verifier that read it, by the verifier's name."""


@dataclass
class MethodResult:
    """What a method returns for one problem."""

    problem_id: str
    chosen: tuple[str, ...] | None
    """The steps of the solution the method picked; None when it picked none (or voted on answers)."""
    answer: str | None
    """The method's final answer (the voted answer for votes); None when it has none."""
    tokens_used: int
    """Every token generated for this problem, including work that was dropped."""
    finished: list[Candidate] = field(default_factory=list)
    """Every finished solution the method produced (pass@N reads them)."""


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """One score from a solution's step scores: their min, product, last or mean (AGGREGATIONS)."""
    if not step_scores:
        raise ValueError("a solution with no scored step has no aggregate score")
    if how == "min":
        return min(step_scores)
    if how == "prod":
        product = 1.0
        for value in step_scores:
            product *= value
        return product
    if how == "last":
        return step_scores[-1]
    if how == "mean":
        return sum(step_scores) / len(step_scores)
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")


def majority_vote(answers: Sequence[str | None], same: Callable[[str, str], bool] | None = None) -> str | None:
    """The most frequent answer (None left out); ties go to the smallest answer string. `same` groups
    equivalent answers as in `weighted_vote`."""
    return weighted_vote(answers, [1.0] * len(answers), same)


def weighted_vote(
    answers: Sequence[str | None], weights: Sequence[float], same: Callable[[str, str], bool] | None = None
) -> str | None:
    """The answer with the largest summed weight (None left out); ties go to the smallest answer string.

    Without `same`, answers count together when their strings are equal. With it, an answer string not seen
    before joins the first earlier class whose first member `rep` has `same(rep, answer)`, else starts its own;
    equal strings always share a class, so `same` is called once per new string and representative. A class
    is returned (and its ties broken) as its first member.
    """
    totals: dict[str, float] = {}
    class_of: dict[str, str] = {}
    for answer, weight in zip(answers, weights, strict=True):
        if answer is None:
            continue
        if answer not in class_of:
            joined = None if same is None else next((rep for rep in totals if same(rep, answer)), None)
            class_of[answer] = answer if joined is None else joined
        totals[class_of[answer]] = totals.get(class_of[answer], 0.0) + weight
    if not totals:
        return None
    return min(totals, key=lambda answer: (-totals[answer], answer))


def with_answers(candidates: Sequence[Candidate], extract_answer: AnswerFn | None) -> Sequence[Candidate]:
    """The candidates whose answer can be read, or all of them when none can (`search.types.readable_first`)."""
    return readable_first(candidates, lambda candidate: candidate.steps, extract_answer)


def _highest(candidates: Sequence[Candidate], value_of: Callable[[Candidate], float],
             extract_answer: AnswerFn | None) -> Candidate | None:
    """The candidate with the highest `value_of` among those with an answer (`with_answers`); ties: earliest."""
    candidates = with_answers(candidates, extract_answer)
    if not candidates:
        return None
    return candidates[max(range(len(candidates)), key=lambda i: (value_of(candidates[i]), -i))]


def best_of_n(candidates: Sequence[Candidate], how: str, extract_answer: AnswerFn | None = None) -> Candidate | None:
    """The finished candidate with the highest aggregated PRM score among those with an answer
    (`with_answers`); ties go to the earliest."""
    return _highest(candidates, lambda candidate: aggregate(candidate.step_scores, how), extract_answer)


@dataclass(eq=False)
class OpenProblem:
    prompt: str
    open: list[Candidate]
    finished: list[Candidate] = field(default_factory=list)
    tokens_used: int = 0


def drop_over_budget(problems: list[OpenProblem], max_tokens: int) -> None:
    """A problem whose tokens reached `max_tokens` (0 = no cap) stops: its open candidates are dropped."""
    if max_tokens:
        for problem in problems:
            if problem.tokens_used >= max_tokens:
                problem.open = []


def advance(candidate: Candidate, step: ProposedStep, max_depth: int) -> tuple[Candidate | None, bool]:
    """Extend `candidate` by `step`: (the extended candidate or None if the step was empty, whether it ended).

    An empty step (the sampler ended the solution without one) ends the candidate as it was; a final
    step, or reaching max_depth, ends it too.
    """
    if not step.text.strip():
        return None, True
    extended = Candidate(candidate.steps + (step.text,), candidate.step_scores, finished=step.is_final)
    return extended, step.is_final or len(extended.steps) >= max_depth


def sample_solutions(
    prompts: Sequence[str], propose: ProposeFn, num_samples: int, max_depth: int, max_tokens: int = 0,
    starts: Sequence[Sequence[str]] | None = None,
) -> list[tuple[list[Candidate], int]]:
    """`num_samples` independent solutions per prompt, sampled step by step, all problems in one batch.

    Each level makes one `propose(prefixes, 1)` call for every open solution of every problem.
    A problem whose tokens reached `max_tokens` (0 = no cap) takes no further step; its unfinished
    solutions are dropped. Returns per prompt (finished solutions in sampling order, tokens used);
    a solution that stops without a final step (depth limit, empty step) is not finished.
    `starts`: per prompt, the steps its solutions continue from (Monte Carlo completions of a prefix; their
    finished solutions hold those steps first, and only the new steps count as tokens).
    """
    if num_samples < 1 or max_depth < 1 or max_tokens < 0:
        raise ValueError("num_samples and max_depth must be at least 1 and max_tokens not negative")
    starts = [()] * len(prompts) if starts is None else starts
    if len(starts) != len(prompts):
        raise ValueError(f"{len(starts)} starts for {len(prompts)} prompts")
    problems = [OpenProblem(prompt, [Candidate(tuple(start)) for _ in range(num_samples)]
                            if len(start) < max_depth else [])
                for prompt, start in zip(prompts, starts)]
    while True:
        drop_over_budget(problems, max_tokens)
        requests = [(problem, candidate) for problem in problems for candidate in problem.open]
        if not requests:
            break
        prefixes = [Prefix(problem.prompt, candidate.steps) for problem, candidate in requests]
        steps = checked_propose(propose, prefixes, 1)
        for problem in problems:
            problem.open = []
        for (problem, candidate), (step, *_) in zip(requests, steps):
            problem.tokens_used += step.num_tokens
            extended, ended = advance(candidate, step, max_depth)
            if not ended:
                problem.open.append(extended)
            elif extended is not None and extended.finished:
                problem.finished.append(extended)
    return [(problem.finished, problem.tokens_used) for problem in problems]


def score_solutions(candidates: Sequence[Candidate], score: ScoreFn, prompts: Sequence[str]) -> None:
    """Fill every candidate's `step_scores` (PRM score of each of its prefixes) in one `score` call."""
    prefixes = [
        Prefix(prompt, candidate.steps[: depth + 1])
        for prompt, candidate in zip(prompts, candidates, strict=True)
        for depth in range(len(candidate.steps))
    ]
    values = iter(checked_score(score, prefixes) if prefixes else [])
    for candidate in candidates:
        candidate.step_scores = tuple(next(values) for _ in candidate.steps)


def verify_solutions(problems: Sequence[tuple[str, Sequence[Candidate]]], verify: VerifyFn, name: str) -> list[int]:
    """Score every finished candidate of every (prompt, candidates) problem with `verify` in one call, storing
    the score as `candidate.verifier_scores[name]`; returns the tokens the verifier generated per problem."""
    flat = [(index, prompt, candidate) for index, (prompt, candidates) in enumerate(problems)
            for candidate in candidates]
    verdicts = checked_verify(verify, [Prefix(prompt, candidate.steps) for _, prompt, candidate in flat])
    tokens = [0] * len(problems)
    for (index, _, candidate), value, generated in zip(flat, verdicts.scores, verdicts.tokens_generated):
        candidate.verifier_scores[name] = value
        tokens[index] += generated
    return tokens


def best_verified(candidates: Sequence[Candidate], name: str, extract_answer: AnswerFn | None = None
                  ) -> Candidate | None:
    """The candidate with the highest score by verifier `name` among those with an answer; ties: earliest."""
    return _highest(candidates, lambda candidate: candidate.verifier_scores[name], extract_answer)


def sampling_methods(
    prompts: Sequence[tuple[str, str]],
    propose: ProposeFn,
    score: ScoreFn | None,
    extract_answer: AnswerFn,
    num_samples: int,
    max_depth: int,
    max_tokens: int = 0,
    aggregations: Sequence[str] = AGGREGATIONS,
    weighted_vote_aggregation: str = "min",
    verifiers: Mapping[str, VerifyFn] | None = None,
) -> dict[str, list[MethodResult]]:
    """Self-consistency, Best-of-N per aggregation and the weighted vote, all read from one set of samples.

    `prompts` are (problem_id, prompt). The methods share the same N solutions per problem (and
    so the same tokens), as they differ only in how they pick; returns method name ->
    results in prompt order: 'self_consistency', 'best_of_n_<aggregation>', 'weighted_vote'
    (and nothing PRM-based when `score` is None), and for each of `verifiers` (name -> verifier of finished
    solutions) 'best_of_n_<name>' and 'weighted_vote_<name>', whose tokens include what the verifier generated.
    pass@N is read from any result's `finished`.
    """
    sampled = sample_solutions([prompt for _, prompt in prompts], propose, num_samples, max_depth, max_tokens)
    if score is not None:
        flat = [(prompt, candidate) for (_, prompt), (finished, _) in zip(prompts, sampled) for candidate in finished]
        score_solutions([candidate for _, candidate in flat], score, [prompt for prompt, _ in flat])
    results: dict[str, list[MethodResult]] = {"self_consistency": []}
    if score is not None:
        results.update({f"best_of_n_{how}": [] for how in aggregations})
        results["weighted_vote"] = []
    verifier_tokens = {name: verify_solutions(
        [(prompt, finished) for (_, prompt), (finished, _) in zip(prompts, sampled)], verify, name)
        for name, verify in (verifiers or {}).items()}
    for name in verifier_tokens:
        results[f"best_of_n_{name}"] = []
        results[f"weighted_vote_{name}"] = []
    for index, ((problem_id, _), (finished, tokens_used)) in enumerate(zip(prompts, sampled)):
        answers = [extract_answer(candidate.steps) for candidate in finished]
        for name, tokens in verifier_tokens.items():
            used = tokens_used + tokens[index]
            best = best_verified(finished, name, extract_answer)
            chosen = best.steps if best is not None else None
            answer = extract_answer(chosen) if chosen is not None else None
            results[f"best_of_n_{name}"].append(MethodResult(problem_id, chosen, answer, used, finished))
            weights = [candidate.verifier_scores[name] for candidate in finished]
            results[f"weighted_vote_{name}"].append(
                MethodResult(problem_id, None, weighted_vote(answers, weights), used, finished))
        results["self_consistency"].append(
            MethodResult(problem_id, None, majority_vote(answers), tokens_used, finished)
        )
        if score is None:
            continue
        for how in aggregations:
            best = best_of_n(finished, how, extract_answer)
            chosen = best.steps if best is not None else None
            answer = extract_answer(chosen) if chosen is not None else None
            results[f"best_of_n_{how}"].append(MethodResult(problem_id, chosen, answer, tokens_used, finished))
        weights = [aggregate(candidate.step_scores, weighted_vote_aggregation) for candidate in finished]
        results["weighted_vote"].append(
            MethodResult(problem_id, None, weighted_vote(answers, weights), tokens_used, finished)
        )
    return results


def greedy_solutions(
    prompts: Sequence[tuple[str, str]], greedy: GreedyFn, extract_answer: AnswerFn, max_depth: int
) -> list[MethodResult]:
    """The argmax step, repeated until a final step, an empty step or max_depth; one `greedy` call per level."""
    candidates = [Candidate() for _ in prompts]
    tokens = [0] * len(prompts)
    open_indices = list(range(len(prompts)))
    while open_indices:
        steps = greedy([Prefix(prompts[i][1], candidates[i].steps) for i in open_indices])
        still_open = []
        for index, step in zip(open_indices, steps, strict=True):
            tokens[index] += step.num_tokens
            extended, ended = advance(candidates[index], step, max_depth)
            if extended is not None:
                candidates[index] = extended
            if not ended:
                still_open.append(index)
        open_indices = still_open
    results = []
    for (problem_id, _), candidate, used in zip(prompts, candidates, tokens):
        # The chain is kept even when it never finished (for inspection); it then has no answer.
        finished = [candidate] if candidate.finished else []
        answer = extract_answer(candidate.steps) if candidate.finished else None
        results.append(MethodResult(problem_id, candidate.steps, answer, used, finished))
    return results


def unbatched_propose(propose: ProposeFn) -> ProposeFn:
    """`propose` called once per prefix and sample (batch 1), for the benchmark against batching."""

    def one_at_a_time(prefixes: Sequence[Prefix], num_samples: int) -> list[list[ProposedStep]]:
        return [[propose([prefix], 1)[0][0] for _ in range(num_samples)] for prefix in prefixes]

    return one_at_a_time


def unbatched_score(score: ScoreFn) -> ScoreFn:
    """`score` called once per prefix (batch 1), for the benchmark against batching."""

    def one_at_a_time(prefixes: Sequence[Prefix]) -> list[float]:
        return [score([prefix])[0] for prefix in prefixes]

    return one_at_a_time
