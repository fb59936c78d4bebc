"""The method protocol: every search and sampling method at a token budget, as one `MethodCall` a search worker runs
(`run_call`), one `MethodRecord` per method and problem. MCTS* itself runs through `search_trees`, for the round's
training search and for every evaluation alike."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lm.data import Problem
from rest_mcts.tasks import Task
from search import baselines, level_search
from search.mcts import MCTSParams, Scorers, best_answer_node, complete_best_paths, run_mcts
from search.tree import Tree
from search.types import CheckFn, GreedyFn, ProposeFn, ScoreFn, VerifyFn


def search_trees(prompts: Sequence[tuple[str, str]], propose: ProposeFn, greedy: GreedyFn, scorers: Scorers,
                 params: MCTSParams) -> list[Tree]:
    """MCTS* over every (problem id, prompt) at once, batched across trees; with `params.stop_at_end_gate` (solving,
    not collecting traces) every tree answers, even one whose budget ran out first (`complete_best_paths`). The one
    place MCTS* runs: the round's search (`rest_mcts.workers.SearchWorker.search`) and `run_call` both come here."""
    trees = run_mcts(prompts, propose, scorers, params)
    if params.stop_at_end_gate:
        complete_best_paths(trees, greedy, scorers, params.max_depth)
    return trees


SAMPLING_METHODS = (
    "self_consistency", "best_of_n_min", "best_of_n_prod", "best_of_n_last", "best_of_n_mean", "weighted_vote",
    "pass_at_n",
)
"""Methods read from one shared set of N sampled solutions (pass_at_n, the oracle ceiling, included)."""


VERIFIER_METHODS = ("best_of_n_verifier", "weighted_vote_verifier", "beam_search_verifier", "mcts_leaf_verifier",
                    "mcts_step_verifier")
"""Methods that read a verifier (`evaluate --verifier`): Best-of-N and the weighted vote by its scores (of the
sampling group), beam search with the verifier scoring the beams in the PRM's place, MCTS* with the verifier valuing
terminal nodes, and MCTS* with it valuing every node (a generative step scorer in place of the PRM). Their tokens
include what the verifier generated."""


METHODS = ("greedy",) + SAMPLING_METHODS + ("beam_search", "tot_bfs", "mcts") + VERIFIER_METHODS


@dataclass(frozen=True)
class BudgetPlan:
    """How each method spends a token budget per problem: its size knob, set from the budget and L, the
    mean tokens of one greedy solution. MCTS* also takes the budget as its hard cap (it is anytime); the
    others run their planned size to completion, so their tokens per problem vary around the budget."""

    budget: int
    num_samples: int
    """N of the sampling methods: budget / L."""
    beam_width: int
    """N of beam search (one step per beam per level, so about N·L tokens): budget / L, at least its branch."""
    tot_breadth: int
    """b of ToT-BFS (b·k steps per level, so about b·k·L tokens): budget / (k·L)."""


def plan_budget(budget: int, greedy_tokens: float, beam_branch: int, tot_branch: int) -> BudgetPlan:
    if budget < 1:
        raise ValueError(f"budget {budget}: expected a positive number of tokens per problem")
    solutions = budget / max(greedy_tokens, 1.0)
    return BudgetPlan(
        budget=budget,
        num_samples=max(1, round(solutions)),
        beam_width=max(beam_branch, round(solutions)),
        tot_breadth=max(1, round(solutions / tot_branch)),
    )


@dataclass(frozen=True)
class MethodCall:
    """One batch of work for a search worker: a method group at one budget and seed on one split."""

    group: str
    """'greedy', 'sampling' (every method in SAMPLING_METHODS, and the verifier's Best-of-N and weighted vote when a
    verifier is given), 'beam_search', 'beam_search_verifier', 'tot_bfs', 'mcts', 'mcts_leaf_verifier' or
    'mcts_step_verifier'."""
    split: str
    seed: int
    plan: BudgetPlan | None
    """None for greedy, which has no budget."""
    mcts: MCTSParams
    beam_branch: int = 2
    tot_branch: int = 3
    max_depth: int = 10
    answer_margin: float = 0.0
    """MCTS*'s answer margin (`search.mcts.best_answer_node`)."""


@dataclass(frozen=True)
class MethodRecord:
    """One method's outcome on one problem at one budget and seed (the raw rows of an evaluation)."""

    split: str
    method: str
    budget: int
    """Tokens per problem the method was given; 0 for greedy."""
    seed: int
    problem_id: str
    correct: bool
    tokens: int
    seconds: float
    """Worker seconds per problem of the method's group (shared by methods that read the same samples)."""
    answer: str | None = None
    """The method's final answer (pass_at_n: self-consistency's); None when it found none."""


def run_call(call: MethodCall, task: Task, problems: Sequence[Problem], propose: ProposeFn, greedy: GreedyFn,
             score: ScoreFn, verify: VerifyFn | None = None, check: CheckFn | None = None,
             prm: ScoreFn | None = None) -> list[MethodRecord]:
    """Run `call` on `problems` with the given models (and verifier); one record per method and problem. `score` is
    the step scorer the PRM-guided baselines read; with an execution `check`, MCTS* reads the PRM alone (`prm`,
    default `score`) and prunes the steps that fail the check."""
    prompts = [(problem.id, task.format_prompt(problem)) for problem in problems]
    started = time.time()
    budget = call.plan.budget if call.plan else 0
    # Sampling, beam search and ToT are sized by the plan and run to completion: a hard cap would cut every
    # solution of a long problem at once (N solutions sized for the mean length all stop mid-way) and leave
    # it unanswered. MCTS* is anytime: the budget is its cap. Every record reports the tokens actually used.
    results: dict[str, list[baselines.MethodResult]] = {}
    if call.group == "greedy":
        results["greedy"] = baselines.greedy_solutions(prompts, greedy, task.extract_answer, call.max_depth)
    elif call.group == "sampling":
        results = baselines.sampling_methods(prompts, propose, score, task.extract_answer, call.plan.num_samples,
                                             call.max_depth, verifiers={"verifier": verify} if verify else None)
        results["pass_at_n"] = results["self_consistency"]
    elif call.group in ("beam_search", "beam_search_verifier"):
        if call.group == "beam_search_verifier" and verify is None:
            raise ValueError(f"method group {call.group!r} needs a verifier")
        params = level_search.LevelSearchParams(call.plan.beam_width, call.beam_branch, call.max_depth)
        results[call.group] = level_search.beam_search(prompts, propose, score, task.extract_answer, params,
                                                    verify if call.group == "beam_search_verifier" else None)
    elif call.group == "tot_bfs":
        params = level_search.LevelSearchParams(call.plan.tot_breadth, call.tot_branch, call.max_depth)
        results[call.group] = level_search.tot_bfs(prompts, propose, score, task.extract_answer, params)
    elif call.group in ("mcts", "mcts_leaf_verifier", "mcts_step_verifier"):
        if call.group != "mcts" and verify is None:
            raise ValueError(f"method group {call.group!r} needs a verifier")
        scorers = Scorers(prm or score, leaf_verify=verify if call.group != "mcts" else None,
                          step_verify=verify if call.group == "mcts_step_verifier" else None, check=check)
        params = replace(call.mcts, max_tokens=budget, stop_at_end_gate=True)
        trees = search_trees(prompts, propose, greedy, scorers, params)
        results[call.group] = []
        for tree in trees:
            best = best_answer_node(tree, call.answer_margin, task.extract_answer)
            chosen = tree.steps_of(best) if best is not None else None
            answer = task.extract_answer(chosen) if chosen is not None else None
            results[call.group].append(baselines.MethodResult(tree.problem_id, chosen, answer, tree.tokens_used))
    else:
        raise ValueError(f"unknown method group {call.group!r}")
    seconds = (time.time() - started) / max(1, len(problems))
    records = []
    for method, method_results in results.items():
        for problem, result in zip(problems, method_results, strict=True):
            if method == "pass_at_n":
                correct = any(task.check_answer(task.extract_answer(c.steps), problem.answer) for c in result.finished)
            else:
                correct = task.check_answer(result.answer, problem.answer)
            records.append(MethodRecord(call.split, method, budget, call.seed, problem.id, bool(correct),
                                        result.tokens_used, seconds, result.answer))
    return records
