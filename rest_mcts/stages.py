"""The stages of a round, each a function of the run's context and the round that returns its metrics, and the
list of stages each self-training method runs (`ROUND_STAGES`; round 0 runs `WARM_START_STAGES`; `stages_of` adds
the verifier's training when `verifier.train_in_rounds`).

Each stage reads the files of the stages before it in the round folder and writes its own, so any stage can be
rerun or resumed alone.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lm.data import PolicyExample, Problem, ValueExample, read_jsonl, write_jsonl
from rest_mcts import recipes, seeds
from rest_mcts.actors import Actors
from rest_mcts.config import RunConfig, TrainConfig, check_values
from rest_mcts.problems import RunProblems
from rest_mcts.rounds import Round
from rest_mcts.search_models import SamplerSettings
from rest_mcts.tasks import Task, load_task

logger = logging.getLogger("rest_mcts")


@dataclass
class Context:
    """What every stage may use: the config, the run folder, the task and its problems, and the run's actors."""

    config: RunConfig
    run_dir: Path
    task: Task
    problems: RunProblems
    actors: Actors

    @classmethod
    def of(cls, config: RunConfig, run_dir: Path) -> Context:
        check_values(config)
        task = load_task(config.task, config.model.policy_model)
        return cls(config, run_dir, task, RunProblems.of(config, task),
                   Actors(config.cluster, config.logging.experiment))

    def search_pool(self, round_: Round, policy: Path, prm: Path | None, temperature: float, purpose: str,
                    greedy_first: bool = False):
        settings = SamplerSettings.from_config(
            self.config, str(policy), str(prm) if prm else "", temperature,
            seeds.round_sampling_seed(self.config.seed, round_.index), greedy_first)
        return self.actors.search_pool(settings, f"r{round_.index:02d}-{purpose}")


Stage = tuple[str, Callable[[Context, Round], dict[str, float]]]
"""A stage's name (in stages.json and `timing_s/<name>`) and its body."""


# -- models of round 0 ------------------------------------------------------------------------------


def init_policy(ctx: Context, round_: Round) -> dict[str, float]:
    """The embedded tiny policy (or the user's checkpoint), saved as round 0's starting point."""
    from lm.build import build_tiny_policy, load_policy, load_tokenizer
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    model = ctx.config.model
    if model.policy_model:
        tokenizer, policy = load_tokenizer(model.policy_model), load_policy(model.policy_model)
    else:
        tokenizer = build_char_tokenizer()
        policy = build_tiny_policy(tokenizer, model.hidden_size, model.num_layers, model.num_heads,
                                   model.intermediate_size, model.max_positions,
                                   seed=seeds.model_init_seed(ctx.config.seed, "policy"))
    save_checkpoint(policy, tokenizer, round_.path / "init_policy")
    return {"model/policy_parameters": float(sum(p.numel() for p in policy.parameters()))}


def init_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """The user's PRM checkpoint, else a PRM whose body is the warm-started policy's and whose head is new."""
    from lm.build import load_prm, load_tokenizer, prm_from_policy
    from lm.checkpoints import save_checkpoint

    model = ctx.config.model
    if model.prm_model:
        prm, tokenizer = load_prm(model.prm_model), load_tokenizer(model.prm_model)
    else:
        prm = prm_from_policy(round_.policy, seed=seeds.model_init_seed(ctx.config.seed, "prm"))
        tokenizer = load_tokenizer(round_.policy)
    save_checkpoint(prm, tokenizer, round_.path / "init_prm")
    return {"model/prm_parameters": float(sum(p.numel() for p in prm.parameters()))}


# -- search, value inference, trace filtering -------------------------------------------------------


def search_with(ctx: Context, round_: Round, policy: Path, prm: Path | None) -> dict[str, float]:
    """MCTS* at full budget on this round's training problems; trees appended to trees.jsonl."""
    from rest_mcts.workers import search_to_file

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


def _searched_trees(ctx: Context, round_: Round):
    """(problem, tree) of every tree in the round's trees.jsonl, in problem order: shards append their trees as
    they finish, in an order that changes from run to run, and the training data must not depend on it."""
    from rest_mcts.workers import read_finished_trees
    from search.tree import Tree

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
    every node (the unexplored ones included)."""
    from rest_mcts.evaluation import auroc
    from search.value_inference import infer_process_rewards, unsolved_rewards, value_targets

    task, values, examples = ctx.task, ctx.config.values, []
    all_targets, all_labels = [], []
    for problem, tree in _searched_trees(ctx, round_):
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
    from search.filtering import correct_traces

    task, traces = ctx.task, ctx.config.traces
    examples, sound_traces = [], 0
    for problem, tree in _searched_trees(ctx, round_):
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


def rest_em_target_tokens(ctx: Context, round_: Round) -> int | None:
    """The tokens this round's ReST-EM sampling must generate: the matched run's search of the same round."""
    match = ctx.config.rest_em.match_tokens_of
    if not match:
        return None
    matched = Round.of(Path(match), round_.index)
    tokens = matched.stages().get("search", {}).get("metrics", {}).get("search/tokens")
    if tokens is None:
        raise ValueError(f"--rest_em.match_tokens_of {match}: round {round_.index} has no finished search stage "
                         f"({matched.path / 'stages.json'})")
    return int(tokens)


def sample(ctx: Context, round_: Round) -> dict[str, float]:
    """ReST-EM's data: solutions sampled with the previous round's policy at the search temperature, in waves of
    solutions per problem, until the round has generated the matched run's search tokens (or
    `rest_em.samples_per_problem` per problem); samples.jsonl, one line per problem and wave."""
    from rest_mcts.workers import shard

    problems = ctx.problems.for_round(round_.index, ctx.config.task.problems_per_round)
    pool = ctx.search_pool(round_, round_.previous.policy, None, ctx.config.search.temperature, "sample")
    target = rest_em_target_tokens(ctx, round_)
    per_problem = ctx.config.rest_em.samples_per_problem
    shards = shard(problems, ctx.config.cluster.problems_per_task, len(pool.workers))
    path = round_.path / "samples.jsonl"
    path.unlink(missing_ok=True)
    spent, waves, samples, tokens_per_sample = 0, 0, 0, None
    base = pool.settings
    while True:
        if target is None:
            count = per_problem - samples
        else:
            remaining = target - spent
            if tokens_per_sample is not None and remaining < 0.5 * tokens_per_sample * len(problems):
                break
            count = 1 if tokens_per_sample is None else max(1, round(remaining / (tokens_per_sample * len(problems))))
        if count < 1:
            break
        pool.settings = replace(base, seed=seeds.wave_seed(base.seed, waves))
        rows = [row for batch in pool.map("sample", shards, count, ctx.config.search.max_depth,
                                          label=f"round {round_.index} sample wave {waves}") for row in batch]
        wave_tokens = sum(row["tokens"] for row in rows)
        spent, samples, waves = spent + wave_tokens, samples + count, waves + 1
        tokens_per_sample = spent / (samples * len(problems))
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps({**row, "wave": waves - 1}) + "\n" for row in rows))
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


def keep_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """ReST-EM trains no PRM: the previous round's is carried forward (the round evaluation's MCTS* uses it)."""
    from lm.checkpoints import copy_checkpoint

    copy_checkpoint(round_.previous.prm, round_.prm)
    return {}


# -- training ---------------------------------------------------------------------------------------


def train(ctx: Context, round_: Round, role: str, start: Path, examples: list, section: TrainConfig,
          steps: int) -> dict[str, float]:
    """Train the model of `role` from checkpoint `start` for `steps` optimizer steps into the round folder; with
    no examples, `start` is kept as the round's model."""
    if not examples:
        return keep_model(round_, role, start, "no training examples")
    spec = replace(section, max_steps=steps, seed=seeds.train_seed(ctx.config.seed, round_.index, section.seed))
    if round_.index > 0 and section.round_learning_rate > 0:
        spec = replace(spec, learning_rate=section.round_learning_rate)
    trainers = ctx.actors.trainers(f"r{round_.index:02d}-train")
    result = trainers.train(role, start, examples, spec, round_.path / role, f"round {round_.index} train_{role}")
    return {f"{role}/loss": result.last_loss, f"{role}/first_loss": result.first_loss,
            f"{role}/steps": float(result.steps), f"{role}/tokens_per_s": result.tokens_per_s}


def keep_model(round_: Round, role: str, start: Path, why: str) -> dict[str, float]:
    """The checkpoint `start`, untrained, as the round's model of `role`."""
    from lm.checkpoints import copy_checkpoint

    logger.warning("round %d: %s; the %s is kept untrained", round_.index, why, role)
    copy_checkpoint(start, round_.path / role)
    return {f"{role}/steps": 0.0}


def policy_training_data(ctx: Context, round_index: int) -> list[PolicyExample]:
    """Every verified trace found so far plus seed solutions replayed beside them (`traces.seed_replay_ratio`
    per trace; all of them while no trace is found yet); the control run: seed solutions only."""
    seed_examples = ctx.problems.seed_examples
    if ctx.config.control:
        return list(seed_examples)
    found = [example for index in range(1, round_index + 1)
             for example in read_jsonl(Round.of(ctx.run_dir, index).path / "policy_examples.jsonl", PolicyExample)]
    ratio = ctx.config.traces.seed_replay_ratio
    if not found or ratio < 0 or ratio * len(found) >= len(seed_examples):
        return list(seed_examples) + found
    replayed = random.Random(seeds.replay_seed(ctx.config.seed, round_index)).sample(
        seed_examples, int(round(ratio * len(found))))
    return replayed + found


def _policy_metrics(ctx: Context, round_: Round, start: Path, examples: list[PolicyExample], steps: int):
    metrics = train(ctx, round_, "policy", start, examples, ctx.config.policy_train, steps)
    return {**metrics, "policy/examples": float(len(examples))}


def warm_start_policy(ctx: Context, round_: Round) -> dict[str, float]:
    """Round 0: SFT of the initial policy on the seed solutions (none with policy_train.warm_start_steps 0)."""
    if ctx.config.policy_train.warm_start_steps == 0:
        return {**keep_model(round_, "policy", round_.path / "init_policy", "no warm start asked"),
                "policy/examples": 0.0}
    return _policy_metrics(ctx, round_, round_.path / "init_policy", ctx.problems.seed_examples,
                           ctx.config.policy_train.warm_start_steps)


def train_policy(ctx: Context, round_: Round) -> dict[str, float]:
    """SFT of the previous round's policy on every verified trace so far (and replayed seed solutions)."""
    return _policy_metrics(ctx, round_, round_.previous.policy, policy_training_data(ctx, round_.index),
                           ctx.config.policy_train.max_steps)


def _prm_metrics(ctx: Context, round_: Round, start: Path, steps: int) -> dict[str, float]:

    examples = list(read_jsonl(round_.path / "value_examples.jsonl", ValueExample))
    if not examples:
        return {**keep_model(round_, "prm", start, "no value examples (no tree found a correct answer)"),
                "prm/examples": 0.0}
    metrics = train(ctx, round_, "prm", start, examples, ctx.config.prm_train, steps)
    return {**metrics, "prm/examples": float(len(examples))}


def warm_start_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """Round 0: the initial PRM trained on the values of the bootstrap search (not with prm_train.warm_start_steps
    0)."""
    if ctx.config.prm_train.warm_start_steps == 0:
        return {**keep_model(round_, "prm", round_.path / "init_prm", "no warm start asked"), "prm/examples": 0.0}
    return _prm_metrics(ctx, round_, round_.path / "init_prm", ctx.config.prm_train.warm_start_steps)


def train_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """The previous round's PRM trained on this round's values."""
    return _prm_metrics(ctx, round_, round_.previous.prm, ctx.config.prm_train.max_steps)


# -- the verifier trained in the rounds (verifier.train_in_rounds) ----------------------------------

VERIFIER_PAIRS_PER_PROBLEM = 4
"""Preference pairs (simpo, dpo) a round's verifier data takes per searched problem (as `best_of_n --max-pairs`)."""


def verifier_start(ctx: Context, round_: Round) -> Path:
    """Where the round's verifier training starts: the previous round's verifier, else `verifier.model`, else the
    round's policy (orm: a token classifier with the policy's body and a new head, saved first as init_verifier/)."""
    from lm.checkpoints import classifier_from_policy

    if round_.index > 0 and round_.previous.has_verifier:
        return round_.previous.verifier
    if ctx.config.verifier.model:
        return Path(ctx.config.verifier.model)
    if ctx.config.verifier.kind != "orm":
        return round_.policy
    return classifier_from_policy(round_.policy, round_.path / "init_verifier",
                                  seed=seeds.model_init_seed(ctx.config.seed, "verifier"))


def train_verifier(ctx: Context, round_: Round) -> dict[str, float]:
    """`verifier.kind` trained for `verifier_train.max_steps` steps on the round's searched trees' graded terminals
    (`verifier_data.round_verifier_data`: solutions or prefixes, as `verifier.data` says) into verifier/. When the
    trees hold none of what the kind trains on (no preference pair for simpo, no correct solution for GenRM's
    lambda term, ...), nothing is trained (`verifier/steps` 0) and the previous round's verifier is carried forward
    if there is one."""
    from lm.checkpoints import copy_checkpoint
    from rest_mcts.verifier_data import round_verifier_data
    from trainers.verifier import check_data

    problems = {problem.id: problem for problem in ctx.problems.train}
    trees = [tree for _, tree in _searched_trees(ctx, round_)]
    data = round_verifier_data(ctx.task, problems, trees, ctx.config.verifier, VERIFIER_PAIRS_PER_PROBLEM)
    metrics = {"verifier/examples": float(len(data.examples)), "verifier/pairs": float(len(data.pairs))}
    try:
        check_data(data)
    except ValueError as missing:
        carried = round_.index > 0 and round_.previous.has_verifier
        logger.warning("round %d: verifier not trained, the searched trees lack its data (%s); %s", round_.index,
                       missing, "the previous round's verifier is carried forward" if carried else
                       "this round has no verifier")
        if carried:
            copy_checkpoint(round_.previous.verifier, round_.verifier)
        return {**metrics, "verifier/steps": 0.0}
    section = ctx.config.verifier_train
    trained = train(ctx, round_, "verifier", verifier_start(ctx, round_), data, section, section.max_steps)
    return {**trained, **metrics}


# -- evaluation -------------------------------------------------------------------------------------


def evaluate(ctx: Context, round_: Round) -> dict[str, float]:
    """Greedy decoding and MCTS* (the `eval` section's) on the test and OOD splits with this round's models.

    With dev problems, MCTS* runs on them first and its answer margin is the one that answered them best
    (`pick_answer_margin`); the test and OOD answers then use that margin.
    """
    from rest_mcts.evaluation import greedy_metrics, length_accuracy, mcts_metrics, pick_answer_margin
    from rest_mcts.workers import greedy_results, search_to_file

    config, metrics = ctx.config, {}
    pool = ctx.search_pool(round_, round_.policy, round_.prm, config.eval.temperature, "eval",
                           config.eval.greedy_first)
    per_task = config.cluster.problems_per_task
    params = config.eval.mcts_params(config.search)
    margin = config.eval.answer_margin
    if ctx.problems.dev:
        trees = search_to_file(pool, ctx.problems.dev, params, round_.path / "eval_dev_trees.jsonl", per_task,
                               f"round {round_.index} dev MCTS*")
        choice = pick_answer_margin(ctx.task, ctx.problems.dev, trees)
        margin = choice.margin
        metrics["dev/mcts/answer_margin"] = margin
        metrics["dev/mcts/accuracy"] = choice.accuracy[margin]
        metrics["dev/mcts/accuracy_prm_choice"] = choice.accuracy[min(choice.accuracy)]
        metrics["dev/mcts/accuracy_first_path"] = choice.accuracy[max(choice.accuracy)]
        logger.info("round %d: answer margin %g (dev accuracy, sign-test p against the first path: %s)",
                    round_.index, margin, ", ".join(
                        f"{m:g}: {a:.3f}" + (f" p={choice.p_value[m]:.2f}" if m in choice.p_value else "")
                        for m, a in choice.accuracy.items()))
    for split, problems in ctx.problems.held_out.items():
        greedy = greedy_results(pool, problems, config.search.max_depth, per_task,
                                f"round {round_.index} {split} greedy")
        write_jsonl(round_.path / f"eval_{split}_greedy.jsonl", greedy)
        metrics.update(greedy_metrics(greedy, split))
        right = {result.problem_id: result.correct for result in greedy}
        metrics.update(length_accuracy(ctx.task, problems, [right[p.id] for p in problems], f"{split}/greedy"))
        if split == "test" and config.eval.pass_at_k and (round_.index == 0 or config.eval.pass_at_k_every_round):
            metrics.update(pass_at_k_metrics(pool, problems, config, split))
        trees = search_to_file(pool, problems, params, round_.path / f"eval_{split}_trees.jsonl", per_task,
                               f"round {round_.index} {split} MCTS*")
        metrics.update(mcts_metrics(ctx.task, problems, trees, split, margin))
    if round_.has_verifier:
        metrics.update(verifier_mcts_metrics(ctx, round_, pool, params, margin))
    return metrics


def verifier_mcts_metrics(ctx: Context, round_: Round, pool, params, margin: float) -> dict[str, float]:
    """The round evaluation's MCTS* again on each held-out split, with the same parameters and answer margin, and
    the round's verifier valuing the terminal nodes (`mcts_leaf_verifier`) and/or every node in place of the PRM
    (`mcts_step_verifier`), as `verifier.eval_as` says; trees in eval_<split>_trees_<method>.jsonl. On synthetic
    tasks the step verifier's AUROC and sibling ranking on its trees too (`step_verifier/...`)."""
    from rest_mcts.evaluation import mcts_metrics
    from rest_mcts.workers import search_to_file

    config, metrics = ctx.config, {}
    uses = ("leaf", "step") if config.verifier.eval_as == "both" else (config.verifier.eval_as,)
    settings, pool.settings = pool.settings, replace(pool.settings, verifier_path=str(round_.verifier),
                                                     verifier=config.verifier)
    try:
        for use in uses:
            method = f"mcts_{use}_verifier"
            for split, problems in ctx.problems.held_out.items():
                trees = search_to_file(pool, problems, params, round_.path / f"eval_{split}_trees_{method}.jsonl",
                                       config.cluster.problems_per_task,
                                       f"round {round_.index} {split} MCTS* ({use} verifier)", use)
                metrics.update(mcts_metrics(ctx.task, problems, trees, split, margin, method,
                                            "step_verifier" if use == "step" else None))
    finally:
        pool.settings = settings
    return metrics


def pass_at_k_metrics(pool, problems: list[Problem], config: RunConfig, split: str) -> dict[str, float]:
    """pass@k and self-consistency over k sampled solutions per problem (`eval.pass_at_k`)."""
    from rest_mcts.evaluation import BudgetPlan, MethodCall
    from rest_mcts.workers import shard

    k = config.eval.pass_at_k
    call = MethodCall("sampling", split, pool.settings.seed, BudgetPlan(0, k, k, k), config.search.mcts_params(),
                      max_depth=config.search.max_depth)
    shards = shard(problems, config.cluster.problems_per_task, len(pool.workers))
    settings, pool.settings = pool.settings, replace(pool.settings, greedy_first=False)  # all k sampled
    try:
        records = [record for batch in pool.map("run_call", shards, call, label=f"{split} pass@{k}")
                   for record in batch]
    finally:
        pool.settings = settings
    metrics = {}
    for method, name in (("pass_at_n", f"pass_at_{k}"), ("self_consistency", f"self_consistency_{k}")):
        chosen = [record for record in records if record.method == method]
        metrics[f"{split}/{name}/accuracy"] = sum(record.correct for record in chosen) / len(chosen)
    metrics[f"{split}/pass_at_{k}/tokens_per_problem"] = sum(
        record.tokens for record in records if record.method == "pass_at_n") / len(problems)
    return metrics


BODIES: dict[str, Callable[[Context, Round], dict[str, float]]] = {
    spec.body: globals()[spec.body] for spec in recipes.all_stages()}
"""Each stage function by the name `rest_mcts.recipes` gives it."""

WARM_START_STAGES: tuple[Stage, ...] = tuple((spec.name, BODIES[spec.body]) for spec in recipes.WARM_START)
"""Round 0 (`rest_mcts.recipes.WARM_START`) with its functions."""

ROUND_STAGES: dict[str, tuple[Stage, ...]] = {
    method: tuple((spec.name, BODIES[spec.body]) for spec in stages) for method, stages in recipes.RECIPES.items()}
"""The stages of rounds >= 1 per self-training method (`rest_mcts.recipes.RECIPES`) with their functions."""


def stages_of(config: RunConfig, round_index: int) -> tuple[Stage, ...]:
    """The stages of round `round_index` (`rest_mcts.recipes.recipe`) with their functions."""
    return tuple((spec.name, BODIES[spec.body])
                 for spec in recipes.recipe(config.method, round_index, config.verifier.train_in_rounds))
