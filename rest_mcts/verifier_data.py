"""A verifier's training data from the framework's own samples and trees: every distinct solution with its oracle
label and the task's written check, preference pairs, the correct solutions (GenRM's unified objective), and for
a step verifier every prefix with its true step label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from lm.data import PolicyExample, PreferencePair, Problem, VerificationExample
from rest_mcts.config import VerifierConfig
from rest_mcts.tasks import Task
from rest_mcts.tasks.base import rationale_finds_a_wrong_step
from search.tree import Tree

if TYPE_CHECKING:
    from trainers.verifier import VerifierData


def verification_data(task: Task, problems: dict[str, Problem], rows: Sequence[dict], max_pairs_per_problem: int,
                      rationales: bool = True
                      ) -> tuple[list[VerificationExample], list[PreferencePair], list[PolicyExample]]:
    """From sampled solutions with oracle labels (rows of `SearchWorker.sample`): every distinct solution as a
    verification example with the task's written check (empty without `rationales`: only GenRM-CoT reads it);
    per problem up to `max_pairs_per_problem` pairs of a distinct correct and incorrect solution (in sampling
    order); the distinct correct solutions."""
    examples, pairs, solutions = [], [], []
    for row in rows:
        problem = problems[row["problem_id"]]
        prompt = task.format_prompt(problem)
        right, wrong, seen = [], [], set()
        for solution in row["solutions"]:
            steps = tuple(solution["steps"])
            if steps in seen:
                continue
            seen.add(steps)
            examples.append(VerificationExample(problem.id, prompt, steps, solution["correct"],
                                                task.verification_rationale(problem, steps) if rationales else ""))
            (right if solution["correct"] else wrong).append(steps)
        pairs += [PreferencePair(problem.id, prompt, chosen, rejected)
                  for chosen, rejected in list(zip(right, wrong))[:max_pairs_per_problem]]
        solutions += [PolicyExample(problem.id, prompt, steps) for steps in right]
    return examples, pairs, solutions


def step_examples(task: Task, problems: dict[str, Problem], examples: Sequence[VerificationExample],
                  rationales: bool = True) -> list[VerificationExample]:
    """A generative step verifier's data (synthetic tasks): every distinct prefix of every solution, labelled by
    whether all its steps are right (`Task.step_labels`), with the task's check of that prefix (without
    `rationales`: none)."""
    seen, prefixes = set(), []
    for example in examples:
        problem = problems[example.problem_id]
        labels = task.step_labels(problem, example.steps)
        for length in range(1, len(example.steps) + 1):
            steps = example.steps[:length]
            if (example.problem_id, steps) in seen:
                continue
            seen.add((example.problem_id, steps))
            prefixes.append(VerificationExample(example.problem_id, example.prompt, steps, labels[length - 1],
                                                task.verification_rationale(problem, steps) if rationales else ""))
    return prefixes


def cot_consistent(examples: Sequence[VerificationExample]) -> list[VerificationExample]:
    """GenRM-CoT's examples with a verdict that agrees with their check: a solution whose check finds a wrong step
    is labelled incorrect even where its final answer is right (a right answer reached through a wrong step), so
    the verifier never learns to answer yes after writing that a step is wrong."""
    return [replace(e, correct=e.correct and not rationale_finds_a_wrong_step(e.rationale)) for e in examples]


def tree_rows(trees) -> list[dict]:
    """Each searched tree's finished solutions as sample rows (`problem_id`, `solutions`: steps and whether the
    oracle accepts them): the terminal nodes, graded when the tree was searched."""
    rows = []
    for tree in trees:
        solutions = [{"steps": list(tree.steps_of(node.node_id)), "correct": bool(node.answer_correct)}
                     for node in tree.nodes if node.is_terminal and node.node_id != 0]
        rows.append({"problem_id": tree.problem_id, "solutions": solutions})
    return rows


def training_data(task: Task, problems: dict[str, Problem], examples: Sequence[VerificationExample],
                  pairs: Sequence[PreferencePair], solutions: Sequence[PolicyExample], verifier: VerifierConfig,
                  kind: str, solution_weight: float, data: str = "solutions") -> VerifierData:
    """The `trainers.verifier.VerifierData` of one verifier of `kind` from `verification_data`'s lists: with `data`
    'solutions' the examples as they are (GenRM-CoT: `cot_consistent`), with 'prefixes' every distinct prefix with
    its true step label (`step_examples`); the pairs; the correct solutions when GenRM's lambda (`solution_weight`,
    generative kinds only) is above 0. Beta, gamma and the texts come from `verifier`."""
    from trainers.verifier import GENERATIVE_KINDS, VerifierData, VerifierObjective

    rationales = kind == "genrm_cot"
    if data == "prefixes":
        examples = step_examples(task, problems, examples, rationales)
    elif rationales:
        examples = cot_consistent(examples)
    solution_weight = solution_weight if kind in GENERATIVE_KINDS else 0.0
    objective = VerifierObjective(kind=kind, solution_weight=solution_weight,
                                  beta=verifier.dpo_beta if kind == "dpo" else verifier.simpo_beta,
                                  gamma=verifier.simpo_gamma, format=verifier.text_format())
    return VerifierData(objective, tuple(examples), tuple(pairs), tuple(solutions) if solution_weight else ())


def round_verifier_data(task: Task, problems: dict[str, Problem], trees: Sequence[Tree], verifier: VerifierConfig,
                        max_pairs_per_problem: int) -> VerifierData:
    """The data of a verifier trained in the rounds (`verifier.train_in_rounds`) from the round's searched trees'
    graded terminals (`tree_rows`), as `training_data` builds it for `verifier.kind`, `verifier.data` and
    `verifier.solution_weight`. `problems` maps problem ids to every tree's problem."""
    examples, pairs, solutions = verification_data(task, problems, tree_rows(trees), max_pairs_per_problem,
                                                   verifier.kind == "genrm_cot")
    return training_data(task, problems, examples, pairs, solutions, verifier, verifier.kind,
                         verifier.solution_weight, verifier.data)
