"""The stages of a round, each a function of the run's context and the round that returns its metrics, by phase:
`initialise` (round 0's starting models), `search_and_values` (the search or sampling, the inferred process
rewards, the kept traces), `training` (the policy, the PRM, the verifier) and `round_evaluation`. Which stages a
method runs, and in which order, is data (`rest_mcts.recipes`); `stages_of` gives them with their functions.

Each stage reads the files of the stages before it in the round folder and writes its own, so any stage can be
rerun or resumed alone.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_mcts import recipes
from rest_mcts.config import RunConfig
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context, Stage
from rest_mcts.stages.initialise import init_policy, init_prm
from rest_mcts.stages.round_evaluation import evaluate_round
from rest_mcts.stages.search_and_values import (
    bootstrap_search,
    filter_samples,
    filter_traces,
    infer_values,
    rest_em_target_tokens,
    sample,
    search,
)
from rest_mcts.stages.self_rewarding import judge_samples, preference_pairs, train_policy_dpo
from rest_mcts.stages.training import (
    keep_prm,
    policy_training_data,
    train_policy,
    train_prm,
    train_verifier,
    verifier_start,
    warm_start_policy,
    warm_start_prm,
)

__all__ = ["BODIES", "ROUND_STAGES", "WARM_START_STAGES", "Context", "Stage", "evaluate_round", "filter_samples",
           "filter_traces", "infer_values", "policy_training_data", "rest_em_target_tokens", "stages_of",
           "train_verifier", "verifier_start"]

BODIES: dict[str, Callable[[Context, Round], dict[str, float]]] = {body.__name__: body for body in (
    init_policy, init_prm, bootstrap_search, search, infer_values, filter_traces, sample, filter_samples,
    warm_start_policy, train_policy, warm_start_prm, train_prm, keep_prm, train_verifier, evaluate_round,
    judge_samples, preference_pairs, train_policy_dpo)}
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
