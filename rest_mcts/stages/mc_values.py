"""Step labels by Monte Carlo completion (`values.target` mc_hard, mc_soft, omega), the labels most open PRMs are
trained on, in place of the values inferred from the tree: the policy that searched completes prefixes of the
round's trees `values.mc_completions` times each, on the search workers, and the oracle grades the completions.
The generated tokens are counted (`value/mc_tokens`), so a labelling can be compared with another at its cost."""

from __future__ import annotations

from lm.data import ValueExample, write_jsonl
from rest_mcts.round_metrics import auroc
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context
from rest_mcts.stages.search_and_values import searched_trees
from rest_mcts.workers import shard
from search.tree import Tree
from search.value_inference import FirstErrorSearch, finished_below, mc_target

Label = tuple[str, tuple[str, ...], float]
"""(problem id, prefix steps, target)."""


class Completer:
    """Batched Monte Carlo completions of prefixes by the policy that searched the round (round 0: the warm-started
    policy; later: the previous round's), on the run's search workers; tokens and probed prefixes counted."""

    def __init__(self, ctx: Context, round_: Round):
        self.ctx, self.round_ = ctx, round_
        policy = round_.policy if round_.index == 0 else round_.previous.policy
        self.pool = ctx.search_pool(round_, policy, None, ctx.config.search.temperature, "label")
        self.tokens = self.probes = self.calls = 0

    def right_completions(self, problems, starts: dict[str, list[tuple[str, ...]]]) -> dict[str, list[int]]:
        """Per problem, for each of its starts, how many of `values.mc_completions` completions reach the right
        answer."""
        config = self.ctx.config
        problems = [problem for problem in problems if starts.get(problem.id)]
        if not problems:
            return {}
        shards = shard(problems, config.cluster.problems_per_task, len(self.pool.workers))
        payload = {problem.id: [list(start) for start in starts[problem.id]] for problem in problems}
        rows = [row for batch in self.pool.map("complete", shards, payload, config.values.mc_completions,
                                               config.search.max_depth,
                                               label=f"round {self.round_.index} label {self.calls}")
                for row in batch]
        self.calls += 1
        self.tokens += sum(row["tokens"] for row in rows)
        self.probes += sum(len(row["correct"]) for row in rows)
        return {row["problem_id"]: row["correct"] for row in rows}


def shepherd_labels(ctx: Context, trees: list, completer: Completer) -> list[Label]:
    """Math-Shepherd: every node the `values.nodes` rule keeps, labelled from its completions (mc_hard: any right,
    mc_soft: the share right); a terminal node is its own completion (1 if right, else 0)."""
    values, task = ctx.config.values, ctx.task
    labels: list[Label] = []
    starts: dict[str, list[tuple[str, ...]]] = {}
    kept = [finished_below(tree) if values.nodes == "finished" else [True] * len(tree.nodes) for _, tree in trees]
    for (problem, tree), keep in zip(trees, kept):
        for node in tree.nodes[1:]:
            if keep[node.node_id] and not node.is_terminal:
                starts.setdefault(problem.id, []).append(tree.steps_of(node.node_id))
    right = completer.right_completions([problem for problem, _ in trees], starts)
    for (problem, tree), keep in zip(trees, kept):
        counts = iter(right.get(problem.id, []))
        for node in tree.nodes[1:]:
            if not keep[node.node_id]:
                continue
            steps = tree.steps_of(node.node_id)
            if node.is_terminal:
                labels.append((problem.id, steps, float(task.is_correct(problem, steps))))
            else:
                labels.append((problem.id, steps, mc_target(next(counts), values.mc_completions, values.target)))
    return labels


def omega_labels(ctx: Context, trees: list, completer: Completer) -> list[Label]:
    """OmegaPRM: each finished solution of a tree; a right one labels all its prefixes 1, a wrong one is searched
    for its first wrong step (`FirstErrorSearch`, all solutions of the round probed together, about log2(depth)
    batches), which is labelled 0 and the steps before it 1. A prefix shared by several solutions keeps its first
    label."""
    task = ctx.task
    labels: list[Label] = []
    searches: list[tuple[object, FirstErrorSearch]] = []
    for problem, tree in trees:
        for node in tree.nodes[1:]:
            if not node.is_terminal:
                continue
            steps = tree.steps_of(node.node_id)
            if task.is_correct(problem, steps):
                labels += [(problem.id, steps[:length], 1.0) for length in range(1, len(steps) + 1)]
            else:
                searches.append((problem, FirstErrorSearch(steps)))
    problems = [problem for problem, _ in trees]
    while open_searches := [(problem, search) for problem, search in searches if not search.done]:
        starts: dict[str, list[tuple[str, ...]]] = {}
        for problem, search in open_searches:
            starts.setdefault(problem.id, []).append(search.steps[:search.probe()])
        right = {problem_id: iter(counts) for problem_id, counts in
                 completer.right_completions(problems, starts).items()}
        for problem, search in open_searches:
            search.record(search.probe(), next(right[problem.id]))
    for problem, search in searches:
        labels += [(problem.id, steps, target) for steps, target in search.labels()]
    return labels


def mc_values(ctx: Context, round_: Round) -> dict[str, float]:
    """The PRM's examples (value_examples.jsonl) from Monte Carlo labels, one per distinct prefix; on synthetic
    tasks their AUROC against the true step labels."""
    task = ctx.task
    trees: list[tuple[object, Tree]] = list(searched_trees(ctx, round_))
    completer = Completer(ctx, round_)
    method = omega_labels if ctx.config.values.target == "omega" else shepherd_labels
    problems = {problem.id: problem for problem, _ in trees}
    seen, examples = set(), []
    for problem_id, steps, target in method(ctx, trees, completer):
        if (problem_id, steps) in seen:
            continue
        seen.add((problem_id, steps))
        problem = problems[problem_id]
        label = task.step_labels(problem, steps)[-1] if task.synthetic else None
        examples.append(ValueExample(problem_id, task.format_prompt(problem), steps, target, label))
    write_jsonl(round_.path / "value_examples.jsonl", examples)
    metrics = {"examples/value": float(len(examples)), "value/mc_tokens": float(completer.tokens),
               "value/mc_prefixes": float(completer.probes)}
    labelled = [example for example in examples if example.step_correct is not None]
    value_auroc = auroc([e.target for e in labelled], [bool(e.step_correct) for e in labelled])
    if value_auroc is not None:
        metrics["value/auroc"] = value_auroc
    return metrics
