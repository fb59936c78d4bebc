"""DeepSpeed trainers, one explicit training loop per model role; `trainer_for` names them for the trainer ranks."""

from __future__ import annotations

from collections.abc import Callable

TRAINER_ROLES = ("policy", "prm")
"""Model roles with a trainer: the policy (SFT on verified traces) and the PRM (step values)."""


def trainer_for(role: str) -> Callable:
    """The training function of `role`: (model_path, examples, spec, out_dir, rank, world_size) -> TrainResult."""
    if role == "policy":
        from trainers.policy_sft import train_policy

        return train_policy
    if role == "prm":
        from trainers.prm import train_prm

        return train_prm
    raise ValueError(f"unknown model role {role!r}; expected one of {TRAINER_ROLES}")
