"""DeepSpeed trainers, one explicit training loop per model role; `trainer_for` names them for the trainer ranks."""

from __future__ import annotations

from collections.abc import Callable

TRAINER_ROLES = ("policy", "prm", "verifier")
"""Model roles with a trainer: the policy (SFT on verified traces), the PRM (step values) and the verifier
(GenRM, ORM, SimPO or DPO: `trainers.verifier`)."""


def trainer_for(role: str) -> Callable:
    """The training function of `role`: (model_path, examples, spec, out_dir, rank, world_size, on_step=None) ->
    TrainResult, where `on_step` is called after every optimizer step (`trainers.engine.StepCallback`).

    The verifier's `examples` is one `trainers.verifier.VerifierData` (objective and data), not a sequence."""
    if role == "policy":
        from trainers.policy_sft import train_policy

        return train_policy
    if role == "prm":
        from trainers.prm import train_prm

        return train_prm
    if role == "verifier":
        from trainers.verifier import train_verifier

        return train_verifier
    raise ValueError(f"unknown model role {role!r}; expected one of {TRAINER_ROLES}")
