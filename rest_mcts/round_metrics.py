"""What a round's evaluation measures: accuracy and tokens of greedy decoding and MCTS*, per length, MCTS*'s
answer margin picked on dev, and how well the step scores rank steps against the true step labels (AUROC, sibling
accuracy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from lm.data import Problem
from rest_mcts.tasks import Task
from search.mcts import best_answer_node
from search.tree import Tree


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
