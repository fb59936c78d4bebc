"""Each self-training method as data: the stages of its rounds, in order, with what runs each one (the driver,
the search workers, or the trainer ranks and the model role they train). `rest_mcts.plan` and the checks read
these without importing the stage bodies; `rest_mcts.stages` maps each stage's `body` to its function.

A new method is a new entry of `RECIPES` (and the functions its stages name, in `rest_mcts.stages`):
docs/extending.md walks through one.
"""

from __future__ import annotations

from dataclasses import dataclass

DRIVER = "driver"
SEARCH_WORKER = "search worker"
TRAINER_RANK = "trainer rank"


@dataclass(frozen=True)
class StageSpec:
    """One stage of a round."""

    name: str
    """The stage's name in stages.json, `timing_s/<name>` and the console."""
    body: str
    """The name of the function in `rest_mcts.stages` that runs it."""
    actor: str
    """What runs it: DRIVER, SEARCH_WORKER or TRAINER_RANK."""
    role: str = ""
    """The model role a training stage trains (policy, prm, verifier); its settings are the `<role>_train`
    section."""


WARM_START: tuple[StageSpec, ...] = (
    StageSpec("init_policy", "init_policy", DRIVER),
    StageSpec("train_policy", "warm_start_policy", TRAINER_RANK, "policy"),
    StageSpec("init_prm", "init_prm", DRIVER),
    StageSpec("search", "bootstrap_search", SEARCH_WORKER),
    StageSpec("infer_values", "infer_values", DRIVER),
    StageSpec("filter_traces", "filter_traces", DRIVER),
    StageSpec("train_prm", "warm_start_prm", TRAINER_RANK, "prm"),
    StageSpec("evaluate", "evaluate_round", SEARCH_WORKER),
)
"""Round 0: the warm start of both models, then the round's evaluation."""

RECIPES: dict[str, tuple[StageSpec, ...]] = {
    "rest_mcts": (
        StageSpec("search", "search", SEARCH_WORKER),
        StageSpec("infer_values", "infer_values", DRIVER),
        StageSpec("filter_traces", "filter_traces", DRIVER),
        StageSpec("train_policy", "train_policy", TRAINER_RANK, "policy"),
        StageSpec("train_prm", "train_prm", TRAINER_RANK, "prm"),
        StageSpec("evaluate", "evaluate_round", SEARCH_WORKER),
    ),
    "rest_em": (
        StageSpec("sample", "sample", SEARCH_WORKER),
        StageSpec("filter_traces", "filter_samples", DRIVER),
        StageSpec("train_policy", "train_policy", TRAINER_RANK, "policy"),
        StageSpec("train_prm", "keep_prm", DRIVER),
        StageSpec("evaluate", "evaluate_round", SEARCH_WORKER),
    ),
    "self_rewarding": (
        StageSpec("sample", "sample", SEARCH_WORKER),
        StageSpec("judge", "judge_samples", SEARCH_WORKER),
        StageSpec("filter_traces", "preference_pairs", DRIVER),
        StageSpec("train_policy", "train_policy_dpo", TRAINER_RANK, "policy"),
        StageSpec("train_prm", "keep_prm", DRIVER),
        StageSpec("evaluate", "evaluate_round", SEARCH_WORKER),
    ),
}
"""The stages of rounds >= 1 per self-training method (`--method`). ReST-MCTS*: search with the last round's
models, infer process rewards, keep the verified traces, train the policy on them and the PRM on the values.
ReST-EM: sample solutions with the last round's policy (as many tokens as the matched ReST-MCTS* run's search),
keep the oracle-correct ones, train the policy on them with the same steps; the PRM is carried forward.
Self-Rewarding: sample as ReST-EM does, judge every solution with a model (no oracle), train the policy with DPO on
the highest against the lowest judged solution of each problem; the PRM is carried forward."""

TRAIN_VERIFIER = StageSpec("train_verifier", "train_verifier", TRAINER_RANK, "verifier")
"""The verifier's training, added just before evaluate when `verifier.train_in_rounds`."""


def recipe(method: str, round_index: int, train_verifier: bool) -> tuple[StageSpec, ...]:
    """The stages of round `round_index`: `WARM_START` in round 0, else the method's; with `train_verifier`,
    TRAIN_VERIFIER just before evaluate in round 0 and in every ReST-MCTS* round (a ReST-EM round searches no
    trees to train it on)."""
    stages = WARM_START if round_index == 0 else RECIPES[method]
    if not train_verifier or (round_index > 0 and method != "rest_mcts"):
        return stages
    at = [stage.name for stage in stages].index("evaluate")
    return stages[:at] + (TRAIN_VERIFIER,) + stages[at:]


def all_stages() -> tuple[StageSpec, ...]:
    """Every stage any method runs, each once."""
    seen: dict[str, StageSpec] = {}
    for stage in (*WARM_START, *(s for stages in RECIPES.values() for s in stages), TRAIN_VERIFIER):
        seen.setdefault(stage.body, stage)
    return tuple(seen.values())
