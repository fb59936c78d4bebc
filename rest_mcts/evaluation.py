"""Round metrics: accuracy and tokens of greedy decoding and MCTS*, and AUROC of step scores against true step labels."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from rest_mcts.data import Problem
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


def mcts_metrics(task: Task, problems: Sequence[Problem], trees: Sequence[Tree], split: str) -> dict[str, float]:
    """Accuracy of the best-valued terminal leaf, tokens per problem, and the PRM's step AUROC on these trees."""
    correct, scores, labels = [], [], []
    for problem, tree in zip(problems, trees):
        best = best_answer_node(tree)
        correct.append(best is not None and task.is_correct(problem, tree.steps_of(best)))
        if task.synthetic:
            for node_id, label in node_step_labels(task, problem, tree).items():
                scores.append(tree.nodes[node_id].prm_score)
                labels.append(label)
    metrics = {
        f"{split}/mcts/accuracy": float(np.mean(correct)),
        f"{split}/mcts/tokens_per_problem": float(np.mean([tree.tokens_used for tree in trees])),
    }
    prm_auroc = auroc(scores, labels)
    if prm_auroc is not None:
        metrics[f"{split}/prm/auroc"] = prm_auroc
    return metrics


def greedy_metrics(results: Sequence, split: str) -> dict[str, float]:
    return {
        f"{split}/greedy/accuracy": float(np.mean([result.correct for result in results])),
        f"{split}/greedy/tokens_per_problem": float(np.mean([result.num_tokens for result in results])),
    }
