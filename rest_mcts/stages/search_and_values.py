"""The stages that make a round's training data: the search (MCTS* with the last round's models, or ReST-EM's
sampling), the process rewards inferred from the trees, and the traces kept."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

from lm.data import PolicyExample, ValueExample, read_jsonl, write_jsonl
from rest_mcts import seeds
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context
from rest_mcts.workers import read_finished_trees, search_to_file, shard
from search.filtering import correct_traces
from search.tree import Tree
from search.value_inference import infer_process_rewards, unsolved_rewards, value_targets


def search_with(ctx: Context, round_: Round, policy: Path, prm: Path | None) -> dict[str, float]:
    """MCTS* at full budget on this round's training problems; trees appended to trees.jsonl."""
    problems = ctx.problems.for_round(round_.index, ctx.config.task.problems_per_round)
    pool = ctx.search_pool(round_, policy, prm, ctx.config.search.temperature, "search")
    started = time.time()
    trees = search_to_file(pool, problems, ctx.config.search.mcts_params(), round_.path / "trees.jsonl",
                           ctx.config.cluster.problems_per_task, f"round {round_.index} search")
    seconds = time.time() - started
    tokens = sum(tree.tokens_used for tree in trees)
    solved = [any(node.answer_correct for node in tree.nodes if node.is_terminal) for tree in trees]
    return {"search/tokens": float(tokens), "search/solved_rate": sum(solved) / len(trees),
            "search/nodes": float(sum(len(tree.nodes) for tree in trees)),
            "perf/tokens_per_s": tokens / max(seconds, 1e-9)}


def bootstrap_search(ctx: Context, round_: Round) -> dict[str, float]:
    """Round 0: search with the warm-started policy and no PRM (every step scored 0.5, so UCT explores by visit
    counts alone), for the first PRM's training values."""
    return search_with(ctx, round_, round_.policy, None)


def search(ctx: Context, round_: Round) -> dict[str, float]:
    """Search with the previous round's policy and PRM."""
    return search_with(ctx, round_, round_.previous.policy, round_.previous.prm)


def searched_trees(ctx: Context, round_: Round):
    """(problem, tree) of every tree in the round's trees.jsonl, in problem order: shards append their trees as
    they finish, in an order that changes from run to run, and the training data must not depend on it."""
    problems = {problem.id: problem for problem in ctx.problems.train}
    position = {problem_id: index for index, problem_id in enumerate(problems)}
    records = sorted(read_finished_trees(round_.path / "trees.jsonl"), key=lambda r: position[r["problem_id"]])
    for record in records:
        tree = Tree.from_dict(record)
        yield problems[tree.problem_id], tree


def infer_values(ctx: Context, round_: Round) -> dict[str, float]:
    """Process rewards from each tree and the oracle (ReST-MCTS* reasoning distance, hard estimate and quality
    value) for the nodes `values.nodes` names: the PRM's training examples, value_examples.jsonl. On synthetic
    tasks the AUROC of the targets against the true step labels is reported for the emitted examples and for
    every node (the unexplored ones included). With a Monte Carlo target (`values.target` mc_hard, mc_soft, omega)
    the labels come from completions instead (`rest_mcts.stages.mc_values`)."""
    from rest_mcts.round_metrics import auroc
    from search.value_inference import MC_TARGETS

    if ctx.config.values.target in MC_TARGETS:
        from rest_mcts.stages.mc_values import mc_values

        return mc_values(ctx, round_)
    task, values, examples = ctx.task, ctx.config.values, []
    all_targets, all_labels = [], []
    for problem, tree in searched_trees(ctx, round_):
        rewards = infer_process_rewards(tree, lambda steps, p=problem: task.is_correct(p, steps))
        if not rewards and values.unsolved_trees != "none":
            rewards = unsolved_rewards(tree, terminals_only=values.unsolved_trees == "terminals")
        prompt = task.format_prompt(problem)
        labels: dict[tuple[str, ...], bool] = {}
        if task.synthetic:  # every node's true label, once; the emitted examples are among these nodes
            for steps, target in value_targets(tree, rewards, values.target, "all"):
                labels[steps] = task.step_labels(problem, steps)[-1]
                all_targets.append(target)
                all_labels.append(labels[steps])
        for steps, target in value_targets(tree, rewards, values.target, values.nodes):
            examples.append(ValueExample(problem.id, prompt, steps, target, labels.get(steps)))
    write_jsonl(round_.path / "value_examples.jsonl", examples)
    metrics = {"examples/value": float(len(examples)), "examples/value_all_nodes": float(len(all_targets))}
    labelled = [example for example in examples if example.step_correct is not None]
    for name, value_auroc in (("value/auroc", auroc([e.target for e in labelled],
                                                    [bool(e.step_correct) for e in labelled])),
                              ("value/auroc_all_nodes", auroc(all_targets, all_labels))):
        if value_auroc is not None:
            metrics[name] = value_auroc
    return metrics


def filter_traces(ctx: Context, round_: Round) -> dict[str, float]:
    """The verified-correct traces of each tree, best first (policy_examples.jsonl); with
    `traces.oracle_step_filter`, only those whose every step is right."""
    task, traces = ctx.task, ctx.config.traces
    examples, sound_traces = [], 0
    for problem, tree in searched_trees(ctx, round_):
        prompt = task.format_prompt(problem)
        for steps in correct_traces(tree, lambda s, p=problem: task.is_correct(p, s), traces.max_per_problem):
            sound = task.synthetic and all(task.step_labels(problem, steps))
            if traces.oracle_step_filter and not sound:
                continue
            examples.append(PolicyExample(problem.id, prompt, steps))
            sound_traces += sound
    write_jsonl(round_.path / "policy_examples.jsonl", examples)
    metrics = {"examples/policy": float(len(examples))}
    if examples and task.synthetic:
        metrics["filter/sound_trace_rate"] = sound_traces / len(examples)
    return metrics


def sampling_section(config):
    """The section that says how much a sampling method samples: `rest_em`, or `self_rewarding` for that method."""
    return config.self_rewarding if config.method == "self_rewarding" else config.rest_em


def rest_em_target_tokens(ctx: Context, round_: Round) -> int | None:
    """The tokens this round's sampling (ReST-EM, Self-Rewarding) must generate: the matched run's search of the
    same round."""
    section = sampling_section(ctx.config)
    match = section.match_tokens_of
    if not match:
        return None
    matched = Round.of(Path(match), round_.index)
    tokens = matched.stages().get("search", {}).get("metrics", {}).get("search/tokens")
    if tokens is None:
        name = "self_rewarding" if section is ctx.config.self_rewarding else "rest_em"
        raise ValueError(f"--{name}.match_tokens_of {match}: round {round_.index} has no finished search stage "
                         f"({matched.path / 'stages.json'})")
    return int(tokens)


WAVE_SHARE = 0.8
"""The share of the whole waves left that one wave of matched sampling plans (`sample`)."""


def sample(ctx: Context, round_: Round) -> dict[str, float]:
    """ReST-EM's (and Self-Rewarding's) data: solutions sampled with the previous round's policy at the search
    temperature, in waves of solutions per problem, until the round has generated the matched run's search tokens
    (or `samples_per_problem` per problem); samples.jsonl, one line per problem and wave. When less than a whole
    wave of one solution per problem is left, the last wave samples one more solution for only as many problems
    (drawn with the wave's seed) as the tokens left pay for, so the total lands within about one solution of the
    target."""
    problems = ctx.problems.for_round(round_.index, ctx.config.task.problems_per_round)
    pool = ctx.search_pool(round_, round_.previous.policy, None, ctx.config.search.temperature, "sample")
    target = rest_em_target_tokens(ctx, round_)
    per_problem = sampling_section(ctx.config).samples_per_problem
    path = round_.path / "samples.jsonl"
    path.unlink(missing_ok=True)
    spent, waves, samples, tokens_per_sample = 0, 0, 0, None
    base = pool.settings
    while True:
        wave_problems = problems
        if target is None:
            count = per_problem - samples
        else:
            remaining = target - spent
            if tokens_per_sample is not None and remaining < 0.5 * tokens_per_sample:
                break
            # a wave plans at most 80% of the whole waves left: solutions grow or shrink between waves, and a wave
            # planned on the last one's length overshot the target by up to 9% on the default task
            count = 1 if tokens_per_sample is None else max(
                1, int(WAVE_SHARE * remaining / (tokens_per_sample * len(problems))))
            if tokens_per_sample is not None and remaining < tokens_per_sample * len(problems):
                chosen = random.Random(seeds.wave_seed(base.seed, waves)).sample(
                    range(len(problems)), max(1, round(remaining / tokens_per_sample)))
                wave_problems = [problems[index] for index in sorted(chosen)]
        if count < 1:
            break
        pool.settings = replace(base, seed=seeds.wave_seed(base.seed, waves))
        shards = shard(wave_problems, ctx.config.cluster.problems_per_task, len(pool.workers))
        rows = [row for batch in pool.map("sample", shards, count, ctx.config.search.max_depth,
                                          label=f"round {round_.index} sample wave {waves}") for row in batch]
        wave_tokens = sum(row["tokens"] for row in rows)
        spent, waves = spent + wave_tokens, waves + 1
        samples += count * len(wave_problems) / len(problems)
        tokens_per_sample = spent / (samples * len(problems))
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps({**row, "wave": waves - 1}) + "\n" for row in rows))
        if wave_problems is not problems:
            break
    solved = {row["problem_id"] for row in read_jsonl(path) if any(s["correct"] for s in row["solutions"])}
    metrics = {"sample/tokens": float(spent), "sample/per_problem": float(samples), "sample/waves": float(waves),
               "sample/solved_rate": len(solved) / len(problems)}
    if target is not None:
        metrics["sample/target_tokens"] = float(target)
    return metrics


def filter_samples(ctx: Context, round_: Round) -> dict[str, float]:
    """ReST-EM's traces: per problem the oracle-correct sampled solutions, de-duplicated, at most
    `traces.max_per_problem` (in sampling order), as policy_examples.jsonl."""
    task, traces = ctx.task, ctx.config.traces
    problems = {problem.id: problem for problem in ctx.problems.train}
    kept: dict[str, list[tuple[str, ...]]] = {}
    sound_traces = 0
    for row in read_jsonl(round_.path / "samples.jsonl"):
        chosen = kept.setdefault(row["problem_id"], [])
        for solution in row["solutions"]:
            steps = tuple(solution["steps"])
            if not solution["correct"] or steps in chosen or len(chosen) >= traces.max_per_problem:
                continue
            sound = task.synthetic and all(task.step_labels(problems[row["problem_id"]], steps))
            if traces.oracle_step_filter and not sound:
                continue
            chosen.append(steps)
            sound_traces += sound
    order = {problem_id: index for index, problem_id in enumerate(problems)}
    examples = [PolicyExample(problem_id, task.format_prompt(problems[problem_id]), steps)
                for problem_id in sorted(kept, key=order.__getitem__) for steps in kept[problem_id]]
    write_jsonl(round_.path / "policy_examples.jsonl", examples)
    metrics = {"examples/policy": float(len(examples))}
    if examples and task.synthetic:
        metrics["filter/sound_trace_rate"] = sound_traces / len(examples)
    return metrics
