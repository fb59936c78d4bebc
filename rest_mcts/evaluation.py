"""Round metrics (accuracy and tokens of greedy decoding and MCTS*, AUROC of step scores against true step labels)
and the method comparison at equal token budgets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.metrics import roc_auc_score

from lm.data import Problem
from rest_mcts.tasks import Task
from search.mcts import MCTSParams, best_answer_node
from search.tree import Tree
from search.types import CheckFn, GreedyFn, ProposeFn, ScoreFn, VerifyFn


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` ranking True labels above False; None if one class is missing."""
    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)))


def node_step_labels(task: Task, problem: Problem, tree: Tree) -> dict[int, bool]:
    """True label of every non-root node: whether all steps of its prefix are right (synthetic tasks)."""
    labels = {}
    for node in tree.nodes[1:]:
        steps = tree.steps_of(node.node_id)
        labels[node.node_id] = task.step_labels(problem, steps)[-1]
    return labels


def node_score(node, checked: bool = False) -> float:
    """A node's step score: its `prm_score`, or with `checked` 0 for a pruned node (the check and the PRM together)."""
    return 0.0 if checked and node.pruned else node.prm_score


def sibling_ranking(tree: Tree, labels: dict[int, bool], checked: bool = False) -> tuple[float, int]:
    """How the PRM orders siblings: over every pair of children of one node where one child is right and
    the other wrong, the number of pairs whose right child scored higher (a tie counts half), and the
    number of pairs. This is the choice MCTS* makes at each expansion; AUROC over all nodes mixes
    depths and problems and does not measure it."""
    ranked_right, pairs = 0.0, 0
    for node in tree.nodes:
        right = [node_score(tree.nodes[i], checked) for i in node.children if labels.get(i)]
        wrong = [node_score(tree.nodes[i], checked) for i in node.children if labels.get(i) is False]
        for right_score in right:
            for wrong_score in wrong:
                pairs += 1
                ranked_right += 1.0 if right_score > wrong_score else 0.5 if right_score == wrong_score else 0.0
    return ranked_right, pairs


def step_ranking(task: Task, problems: Sequence[Problem], trees: Sequence[Tree],
                 checked: bool = False) -> dict[str, float]:
    """How the nodes' scores (`prm_score`: whatever valued them; with `checked`, 0 for a pruned node, the score the
    execution check and the PRM give together) rank the true step labels on these trees (synthetic tasks): 'auroc'
    over every non-root node (absent with one class) and 'sibling_accuracy' with 'sibling_pairs' (`sibling_ranking`;
    absent without a pair)."""
    scores, labels = [], []
    ranked_right, pairs = 0.0, 0
    for problem, tree in zip(problems, trees, strict=True):
        tree_labels = node_step_labels(task, problem, tree)
        for node_id, label in tree_labels.items():
            scores.append(node_score(tree.nodes[node_id], checked))
            labels.append(label)
        tree_right, tree_pairs = sibling_ranking(tree, tree_labels, checked)
        ranked_right, pairs = ranked_right + tree_right, pairs + tree_pairs
    ranking = {}
    node_auroc = auroc(scores, labels)
    if node_auroc is not None:
        ranking["auroc"] = node_auroc
    if pairs:
        ranking["sibling_accuracy"] = ranked_right / pairs
        ranking["sibling_pairs"] = float(pairs)
    return ranking


def mcts_metrics(task: Task, problems: Sequence[Problem], trees: Sequence[Tree], split: str,
                 answer_margin: float = 0.0, method: str = "mcts", scorer: str | None = "prm") -> dict[str, float]:
    """`<split>/<method>/accuracy` of the best-valued terminal leaf (`best_answer_node` with `answer_margin`) and
    `<split>/<method>/tokens_per_problem`; on synthetic tasks, `<split>/<scorer>/auroc` and `.../sibling_accuracy`
    (with `.../sibling_pairs`) of the nodes' scores on these trees (`step_ranking`): of the PRM by default, or of
    whatever valued every node (`scorer` 'step_verifier'); None when no one scorer valued them all (a leaf
    verifier)."""
    correct = []
    for problem, tree in zip(problems, trees):
        best = best_answer_node(tree, answer_margin, task.extract_answer)
        correct.append(best is not None and task.is_correct(problem, tree.steps_of(best)))
    metrics = {
        f"{split}/{method}/accuracy": float(np.mean(correct)),
        f"{split}/{method}/tokens_per_problem": float(np.mean([tree.tokens_used for tree in trees])),
        **length_accuracy(task, problems, correct, f"{split}/{method}"),
    }
    if task.synthetic and scorer is not None:
        metrics.update({f"{split}/{scorer}/{name}": value
                        for name, value in step_ranking(task, problems, trees).items()})
        if any(tree.step_checks for tree in trees):
            metrics.update({f"{split}/step_scorer/{name}": value
                            for name, value in step_ranking(task, problems, trees, checked=True).items()})
            metrics[f"{split}/{method}/step_checks_per_problem"] = float(np.mean([t.step_checks for t in trees]))
    return metrics


def length_accuracy(task: Task, problems: Sequence[Problem], correct: Sequence[bool], prefix: str
                    ) -> dict[str, float]:
    """`<prefix>/accuracy_len<n>`: the accuracy over the problems of each difficulty n (`Task.difficulty`); empty for
    a task without one."""
    by_length: dict[int, list[bool]] = {}
    for problem, right in zip(problems, correct, strict=True):
        length = task.difficulty(problem)
        if length is not None:
            by_length.setdefault(length, []).append(bool(right))
    return {f"{prefix}/accuracy_len{length}": float(np.mean(values)) for length, values in sorted(by_length.items())}


ANSWER_MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 1.0)
"""Answer margins a round's evaluation chooses from on its dev problems. The largest, 1 (V lies in [0, 1]),
answers with the path of first proposals (the greedy path when the sampler proposes the argmax step first);
smaller margins let the PRM's values overrule it."""


@dataclass(frozen=True)
class MarginChoice:
    """What the dev problems said about each answer margin."""

    margin: float
    """The chosen margin."""
    accuracy: dict[float, float]
    """Accuracy on the dev problems of every margin tried."""
    p_value: dict[float, float]
    """One-sided sign test of each smaller margin against the first-path margin over the problems where their
    answers differ in correctness: the chance of at least as many wins if the PRM's overrules were coin flips."""


def pick_answer_margin(task: Task, problems: Sequence[Problem], trees: Sequence[Tree],
                       margins: Sequence[float] = ANSWER_MARGINS, significance: float = 0.01) -> MarginChoice:
    """Choose how far MCTS*'s PRM values may overrule the path of first proposals, on held-out problems.

    Every margin answers each (problem, tree) with `best_answer_node`. The largest margin is the default; a
    smaller one is taken only if its answers beat the default's with a one-sided sign test (problems where
    both are right or both wrong do not count) whose p-value is below `significance` divided by the number
    of smaller margins tested (Bonferroni: the chance that a PRM no better than the first path is let
    overrule it stays under `significance` per evaluation). Among those the most accurate wins (ties: the
    larger margin). So a PRM that ranks steps near chance leaves the policy's own answers alone. The
    problems must not be the ones reported on.
    """
    from scipy.stats import binomtest

    if not margins:
        raise ValueError("no answer margins to choose from")
    right: dict[float, list[bool]] = {}
    for margin in margins:
        answers = [best_answer_node(tree, margin, task.extract_answer) for tree in trees]
        right[margin] = [best is not None and task.is_correct(problem, tree.steps_of(best))
                         for problem, tree, best in zip(problems, trees, answers, strict=True)]
    default = max(margins)
    accuracy = {margin: sum(right[margin]) / max(len(problems), 1) for margin in margins}
    p_value = {}
    for margin in margins:
        if margin == default:
            continue
        wins = sum(mine and not theirs for mine, theirs in zip(right[margin], right[default]))
        losses = sum(theirs and not mine for mine, theirs in zip(right[margin], right[default]))
        p_value[margin] = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins else 1.0
    better = [margin for margin, p in p_value.items() if p < significance / len(p_value)]
    chosen = max(better, key=lambda margin: (accuracy[margin], margin)) if better else default
    return MarginChoice(chosen, accuracy, p_value)


def greedy_metrics(results: Sequence, split: str) -> dict[str, float]:
    return {
        f"{split}/greedy/accuracy": float(np.mean([result.correct for result in results])),
        f"{split}/greedy/tokens_per_problem": float(np.mean([result.num_tokens for result in results])),
    }


# Methods at equal token budgets (python -m rest_mcts.evaluate) ----------------------------------

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
    import time

    from search import baselines
    from search.mcts import Scorers, complete_best_paths, run_mcts

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
        params = baselines.LevelSearchParams(call.plan.beam_width, call.beam_branch, call.max_depth)
        results[call.group] = baselines.beam_search(prompts, propose, score, task.extract_answer, params,
                                                    verify if call.group == "beam_search_verifier" else None)
    elif call.group == "tot_bfs":
        params = baselines.LevelSearchParams(call.plan.tot_breadth, call.tot_branch, call.max_depth)
        results[call.group] = baselines.tot_bfs(prompts, propose, score, task.extract_answer, params)
    elif call.group in ("mcts", "mcts_leaf_verifier", "mcts_step_verifier"):
        if call.group != "mcts" and verify is None:
            raise ValueError(f"method group {call.group!r} needs a verifier")
        scorers = Scorers(prm or score, leaf_verify=verify if call.group != "mcts" else None,
                          step_verify=verify if call.group == "mcts_step_verifier" else None, check=check)
        params = replace(call.mcts, max_tokens=budget, stop_at_end_gate=True)
        trees = run_mcts(prompts, propose, scorers, params)
        complete_best_paths(trees, greedy, scorers, params.max_depth)
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


def bootstrap_interval(correct_by_seed: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of accuracy over problems; `correct_by_seed` is [seeds, problems].

    Problems are resampled (each resample keeps a problem's outcomes on every seed), so the interval
    covers variation over problems and seeds.
    """
    per_problem = correct_by_seed.mean(axis=0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_problem), size=(resamples, len(per_problem)))
    means = per_problem[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class SummaryRow:
    split: str
    method: str
    budget: int
    seeds: int
    problems: int
    accuracy: float
    ci_low: float
    ci_high: float
    tokens_per_problem: float
    seconds_per_problem: float


def summarize(records: Sequence[MethodRecord]) -> list[SummaryRow]:
    """Accuracy (with a bootstrap interval), mean tokens and seconds per (split, method, budget)."""
    groups: dict[tuple[str, str, int], list[MethodRecord]] = {}
    for record in records:
        groups.setdefault((record.split, record.method, record.budget), []).append(record)
    rows = []
    for (split, method, budget), group in sorted(groups.items(), key=lambda item: (
            item[0][0], METHODS.index(item[0][1]) if item[0][1] in METHODS else len(METHODS), item[0][1], item[0][2])):
        seeds = sorted({record.seed for record in group})
        problem_ids = sorted({record.problem_id for record in group})
        outcome = {(record.seed, record.problem_id): record.correct for record in group}
        if len(outcome) != len(seeds) * len(problem_ids):
            raise ValueError(f"{split}/{method}/{budget}: not every seed covers every problem")
        matrix = np.array([[outcome[(seed, pid)] for pid in problem_ids] for seed in seeds], dtype=float)
        low, high = bootstrap_interval(matrix)
        rows.append(SummaryRow(split, method, budget, len(seeds), len(problem_ids), float(matrix.mean()), low, high,
                               float(np.mean([record.tokens for record in group])),
                               float(np.mean([record.seconds for record in group]))))
    return rows


@dataclass(frozen=True)
class Comparison:
    """MCTS* against the most accurate other method at one budget that spent no more tokens per problem than
    MCTS* did or the budget allows, whichever is larger, within 10% (pass@N, an oracle, excluded; greedy
    included). Methods sized by the budget can overshoot it (ToT-BFS spends at least k solutions' worth); they
    join the comparison at the budgets where their spending matches."""

    split: str
    budget: int
    method: str
    """The most accurate other method at this budget."""
    mcts_accuracy: float
    other_accuracy: float
    difference: float
    """MCTS*'s accuracy minus the other's."""
    ci_low: float
    ci_high: float
    """95% paired bootstrap interval of the difference (problems resampled, each with its outcomes on every seed
    under both methods)."""
    subject: str = "mcts"
    """The MCTS* variant compared (mcts, mcts_leaf_verifier, mcts_step_verifier)."""


def paired_interval(mine: np.ndarray, theirs: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(mine) - mean(theirs); both are [seeds, problems] in the same order:
    `bootstrap_interval` of the per-outcome differences, so each resampled problem keeps both methods' outcomes."""
    return bootstrap_interval(mine - theirs, resamples, seed)


def compare_mcts(records: Sequence[MethodRecord], method: str = "mcts",
                 tolerance: float = 0.1, against: Sequence[str] | None = None) -> list[Comparison]:
    """Per split and budget where `method` ran: its accuracy difference to the best other method (among `against`
    if given) that spent at most (1 + tolerance) times max(budget, `method`'s mean tokens) per problem, paired over
    problems."""
    outcome: dict[tuple[str, str, int], dict[tuple[int, str], bool]] = {}
    spent: dict[tuple[str, str, int], list[int]] = {}
    for record in records:
        spent.setdefault((record.split, record.method, record.budget), []).append(record.tokens)
        outcome.setdefault((record.split, record.method, record.budget), {})[(record.seed, record.problem_id)] = (
            record.correct)

    def matrix(key, seeds, problem_ids) -> np.ndarray:
        table = outcome[key]
        # greedy is deterministic and runs once: its outcome stands for every seed
        return np.array([[table.get((seed, pid), table.get((next(iter(table))[0], pid), False))
                          for pid in problem_ids] for seed in seeds], dtype=float)

    comparisons = []
    for (split, name, budget), table in sorted(outcome.items()):
        if name != method:
            continue
        seeds = sorted({seed for seed, _ in table})
        problem_ids = sorted({pid for _, pid in table})
        mine = matrix((split, name, budget), seeds, problem_ids)
        allowance = (1 + tolerance) * max(budget, float(np.mean(spent[(split, name, budget)])))
        others = [key for key in outcome if key[0] == split and key[1] not in (method, "pass_at_n")
                  and (against is None or key[1] in against)
                  and (key[2] == budget or key[1] == "greedy") and float(np.mean(spent[key])) <= allowance]
        if not others:
            continue
        scored = [(matrix(key, seeds, problem_ids), key[1]) for key in others]
        theirs, other = max(scored, key=lambda item: item[0].mean())
        low, high = paired_interval(mine, theirs)
        comparisons.append(Comparison(split, budget, other, float(mine.mean()), float(theirs.mean()),
                                      float(mine.mean() - theirs.mean()), low, high, method))
    return comparisons


def verifier_comparisons(records: Sequence[MethodRecord]) -> list[Comparison]:
    """Each MCTS* variant with a verifier that ran: against MCTS* with the PRM only, and against the best other
    method, at each budget (`compare_mcts`)."""
    present = {record.method for record in records}
    comparisons: list[Comparison] = []
    for variant in ("mcts_leaf_verifier", "mcts_step_verifier"):
        if variant in present:
            if "mcts" in present:
                comparisons += compare_mcts(records, variant, against=["mcts"])
            comparisons += compare_mcts(records, variant)
    return comparisons
