"""The training stages: the policy on the kept traces (with the seed solutions replayed), the PRM on the inferred
values, the verifier trained in the rounds, each on the trainer ranks; or the model carried forward unchanged."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from lm.checkpoints import classifier_from_policy, copy_checkpoint
from lm.data import PolicyExample, ValueExample, read_jsonl
from rest_mcts import seeds
from rest_mcts.config import TrainConfig
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context, logger
from rest_mcts.stages.search_and_values import searched_trees


def keep_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """ReST-EM trains no PRM: the previous round's is carried forward (the round evaluation's MCTS* uses it)."""
    copy_checkpoint(round_.previous.prm, round_.prm)
    return {}


def train(ctx: Context, round_: Round, role: str, start: Path, examples: list, section: TrainConfig,
          steps: int, trainer: str = "", out: Path | None = None) -> dict[str, float]:
    """Train the model of `role` from checkpoint `start` for `steps` optimizer steps into the round folder (or
    `out`), with the trainer of `trainer` (default: the role's own; Self-Rewarding trains the policy with the
    verifier's DPO), with the round's training seed and learning rate; with no examples, `start` is kept as the
    round's model."""
    if not examples:
        return keep_model(round_, role, start, "no training examples")
    spec = replace(section, max_steps=steps, seed=seeds.train_seed(ctx.config.seed, round_.index, section.seed))
    if round_.index > 0 and section.round_learning_rate > 0:
        spec = replace(spec, learning_rate=section.round_learning_rate)
    trainers = ctx.actors.trainers(f"r{round_.index:02d}-train")
    result = trainers.train(trainer or role, start, examples, spec, out or round_.path / role,
                            f"round {round_.index} train_{role}", title=f"train {role}")
    return {f"{role}/loss": result.last_loss, f"{role}/first_loss": result.first_loss,
            f"{role}/steps": float(result.steps), f"{role}/tokens_per_s": result.tokens_per_s}


def keep_model(round_: Round, role: str, start: Path, why: str) -> dict[str, float]:
    """The checkpoint `start`, untrained, as the round's model of `role`."""
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


VERIFIER_PAIRS_PER_PROBLEM = 4
"""Preference pairs (simpo, dpo) a round's verifier data takes per searched problem (as `best_of_n --max-pairs`)."""


def verifier_start(ctx: Context, round_: Round) -> Path:
    """Where the round's verifier training starts: the previous round's verifier, else `verifier.model`, else the
    round's policy (orm: a token classifier with the policy's body and a new head, saved first as init_verifier/)."""
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
    from rest_mcts.verifier_data import round_verifier_data
    from trainers.verifier import check_data

    problems = {problem.id: problem for problem in ctx.problems.train}
    trees = [tree for _, tree in searched_trees(ctx, round_)]
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
