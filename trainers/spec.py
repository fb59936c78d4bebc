"""The plain training specs the controller and the trainers share: how a trainer call trains (`TrainSpec`), one
training row (`TrainSequence`), what a call did (`TrainResult`), and the DeepSpeed config and step count a spec
gives. Torch-free, so that the configuration and the placement plan can use them without loading torch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)

VERIFIER_KINDS = ("genrm", "genrm_cot", "orm", "simpo", "dpo")
"""Verifier objectives `trainers.verifier.train_verifier` knows (`VerifierObjective.kind`, `verifier.kind`)."""
GENERATIVE_KINDS = ("genrm", "genrm_cot")
"""Kinds that answer Yes/No as text (GenRM), so solution SFT can be mixed in."""
PREFERENCE_KINDS = ("simpo", "dpo")
"""Kinds that train on preference pairs."""


@dataclass(frozen=True)
class TrainSpec:
    """How one trainer call trains: DeepSpeed, optimizer and schedule settings."""

    zero_stage: int = 2
    """DeepSpeed ZeRO stage (0-3)."""
    micro_batch_size: int = 16
    """Sequences (units of rows where a trainer groups them, e.g. preference pairs) per rank per forward/backward
    pass."""
    gradient_accumulation_steps: int = 1
    """Micro-batches accumulated into one optimizer step."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    warmup_steps: int = 10
    """Optimizer steps of linear warm-up from learning_rate/warmup_steps to learning_rate."""
    max_steps: int = 0
    """Optimizer steps to run, cycling through the data (0: run `epochs` passes instead)."""
    epochs: int = 1
    """Passes over the data when max_steps is 0."""
    bf16: bool = False
    """Train in bfloat16 (only where the accelerator supports it; otherwise fp32 with a warning)."""
    offload_optimizer: bool = False
    """ZeRO-Offload: keep optimizer states in CPU memory (ZeRO stage >= 1)."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them (Hugging Face activation
    checkpointing): less activation memory for one more forward pass per micro-batch."""
    seed: int = 0
    """Seed of the data order (per epoch) and of torch."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0: no clipping)."""
    group_by_length: bool = True
    """Batch sequences of similar length together (within shuffled windows), so that less of each
    batch is padding; the batches themselves still come in random order."""


@dataclass(frozen=True)
class TrainResult:
    """What one trainer call did, as seen from rank 0 (losses averaged over ranks)."""

    steps: int
    """Optimizer steps run."""
    losses: list[float]
    """Mean training loss of each optimizer step, averaged over micro-batches and ranks."""
    first_loss: float
    """losses[0]."""
    last_loss: float
    """losses[-1]."""
    tokens: int
    """Labelled tokens trained on (label != IGNORE_INDEX), summed over ranks."""
    seconds: float
    """Wall time of the training steps (engine start-up and saving excluded)."""
    tokens_per_s: float
    """tokens / seconds."""
    parameter_checksum: float = 0.0
    """Sum of all parameters (float64) after training, on this rank; equal on every rank of a run."""


@dataclass(frozen=True)
class TrainSequence:
    """One training row: token ids and a label per token (IGNORE_INDEX where no loss is taken)."""

    input_ids: list[int]
    labels: list[float]


def deepspeed_config_for(spec: TrainSpec, world_size: int, device: str, bf16_supported: bool) -> dict:
    """The DeepSpeed config dict for `spec` on `world_size` ranks of `device` ("cuda" or "cpu") whose accelerator
    does or does not support bf16 (the LR schedule is set in `trainers.engine.build_engine`)."""
    bf16 = spec.bf16 and bf16_supported
    if spec.bf16 and not bf16:
        logger.warning("bf16 asked for but not supported by the %s accelerator; training in fp32", device)
    zero: dict = {"stage": spec.zero_stage}
    if spec.offload_optimizer and spec.zero_stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": device == "cuda"}
    optimizer_params: dict = {
        "lr": spec.learning_rate,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": spec.weight_decay,
    }
    if device == "cpu" and not spec.offload_optimizer:
        # torch's AdamW: no DeepSpeed op to compile on CPU.
        optimizer_params["torch_adam"] = True
    return {
        "train_batch_size": spec.micro_batch_size * spec.gradient_accumulation_steps * world_size,
        "train_micro_batch_size_per_gpu": spec.micro_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "gradient_clipping": spec.max_grad_norm,
        "optimizer": {"type": "AdamW", "params": optimizer_params},
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def planned_steps(num_sequences: int, spec: TrainSpec, world_size: int) -> int:
    """Optimizer steps of a run: max_steps, or enough steps for `epochs` passes over the shards of
    `num_sequences` sequences (units, where rows are grouped)."""
    if spec.max_steps > 0:
        return spec.max_steps
    micro_batches_per_epoch = math.ceil(math.ceil(num_sequences / world_size) / spec.micro_batch_size)
    return max(1, math.ceil(spec.epochs * micro_batches_per_epoch / spec.gradient_accumulation_steps))
