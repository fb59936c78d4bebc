"""DeepSpeed set-up, the training loop the trainers share, and Hugging Face checkpoint saving.

Each trainer (policy SFT, PRM, verifier) turns its examples into `TrainSequence`s and a loss function and
hands them to `run_training`; everything about ranks, the optimizer, the schedule and the checkpoint
lives here (which sequences each micro-batch holds: `trainers/batches.py`). This module must not import
Ray: the worker module owns the processes.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from lm.checkpoints import save_checkpoint
from trainers.batches import collate, unit_micro_batches
from trainers.spec import TrainResult, TrainSequence, TrainSpec, deepspeed_config_for, planned_steps

logger = logging.getLogger(__name__)


LossFunction = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
"""(engine, batch) -> scalar mean loss over labelled tokens, which the engine weighs (`run_training`); or
(loss, weighted_loss) from a loss that weighs its own terms: the first is reported, the second back-propagated
as it is. The batch holds input_ids, attention_mask, labels ([rows, longest]) and row_index ([rows], the
index in `sequences` of each row)."""

StepCallback = Callable[[int, int, float], None]
"""Called on every rank after each optimizer step with (step, 1-based; total_steps; the step's loss on this rank,
the mean over its micro-batches): how a caller watches training as it runs (the trainer ranks report it to Ray's
metrics) without this module knowing who watches."""


def pick_device_and_backend() -> tuple[str, str]:
    """("cuda", "nccl") when CUDA is available, else ("cpu", "gloo") with DS_ACCELERATOR=cpu set.

    Call before the first `import deepspeed`: DeepSpeed picks its accelerator at import time.
    """
    if torch.cuda.is_available():
        return "cuda", "nccl"
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    return "cpu", "gloo"


def init_distributed(
    rank: int,
    world_size: int,
    master_addr: str,
    master_port: int,
    local_rank: int = 0,
    timeout_s: float = 1800.0,
    cpu_shm_comm: bool = False,
    rendezvous_fd: int | None = None,
    own_store: bool = False,
) -> None:
    """Join the process group (gloo on CPU, nccl on GPU); a second call in a process does nothing.

    With `own_store`, the group meets at a torch TCPStore at master_addr:master_port whose server (rank 0) listens
    on `rendezvous_fd`, a socket rank 0 has bound and listens on (on master_addr only); without, the env://
    rendezvous, whose store listens on every interface.

    `timeout_s` bounds every collective of the group, so a rank that dies cannot hang the others.
    `cpu_shm_comm` lets DeepSpeed on CPU use its shared-memory allreduce, a C++ op it compiles on
    first use (70-90 s on a 2-core machine); off, collectives go through plain gloo.
    """
    if dist.is_available() and dist.is_initialized():
        return
    device, backend = pick_device_and_backend()
    os.environ.update(
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(local_rank),
    )
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    # DeepSpeed compiles its ops (on CPU, a shared-memory comm op) once into this folder; one per
    # environment, so that two virtualenvs sharing ~/.cache do not rebuild each other's ops.
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(sys.prefix, "torch_extensions"))
    import deepspeed

    if device == "cpu" and not cpu_shm_comm:
        from deepspeed.ops.op_builder.cpu.comm import ShareMemCommBuilder

        # DeepSpeed keeps its op-compatibility table in one module dict and reads it before building.
        deepspeed.ops.__compatible_ops__[ShareMemCommBuilder.NAME] = False
    if own_store:  # DeepSpeed then takes the group that exists instead of forming its own
        store = dist.TCPStore(master_addr, master_port, world_size, rank == 0, timedelta(seconds=timeout_s),
                              master_listen_fd=rendezvous_fd if rank == 0 else None)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout_s))
    deepspeed.init_distributed(
        dist_backend=backend, timeout=timedelta(seconds=timeout_s), verbose=False
    )


def deepspeed_config(spec: TrainSpec, world_size: int, device: str | None = None,
                     bf16_supported: bool | None = None) -> dict:
    """`trainers.spec.deepspeed_config_for` with `device` ("cuda" or "cpu") and `bf16_supported` defaulting to
    this process's accelerator (`rest_mcts.plan` resolves the config of ranks it does not run on with the pure
    function, without importing DeepSpeed)."""
    if device is None:
        device, _ = pick_device_and_backend()
    if bf16_supported is None:
        from deepspeed.accelerator import get_accelerator

        bf16_supported = get_accelerator().is_bf16_supported()
    return deepspeed_config_for(spec, world_size, device, bf16_supported)


@contextlib.contextmanager
def partitioned_loading(spec: TrainSpec, world_size: int):
    """Under ZeRO-3, a model loaded with `from_pretrained` inside this block is partitioned across the ranks as it
    loads (transformers' `HfDeepSpeedConfig`, which loads through `deepspeed.zero.Init`), so no rank ever holds
    the whole model: a 7B policy in fp32 is 28 GB, more than a GPU holds beside its activations. Below stage 3
    it does nothing. The model must be trained by an engine built from the same spec and world size."""
    if spec.zero_stage != 3:
        yield
        return
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    keep = HfDeepSpeedConfig(deepspeed_config(spec, world_size))  # transformers holds it by weak reference
    try:
        yield
    finally:
        del keep
        unset_hf_deepspeed_config()


def enable_gradient_checkpointing(model: torch.nn.Module) -> bool:
    """Turn on `model`'s activation checkpointing (non-reentrant, torch's recommended form) and its KV cache off
    (useless in training; transformers turns it off under checkpointing anyway, with a warning).
    Returns the model's `use_cache` before, which `run_training` restores before saving: the checkpoint is read
    by samplers, for which the cache is what makes decoding fast."""
    # Recent transformers renamed gradient_checkpointing_enable (kept as a deprecated alias) to this.
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": False})
    use_cache = getattr(model.config, "use_cache", False)
    model.config.use_cache = False
    return use_cache


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak learning rate before optimizer step `step + 1` (0-based `step`).

    Linear warm-up reaching the peak at step `warmup_steps`, then linear decay that still leaves a
    non-zero rate for the last step. Unlike DeepSpeed's WarmupLR/WarmupDecayLR, whose first two
    optimizer steps run at warmup_min_lr, no step is wasted at a zero rate.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def build_engine(model: torch.nn.Module, spec: TrainSpec, world_size: int, total_steps: int):
    """Wrap `model` in a DeepSpeed engine (AdamW, warm-up then linear decay over `total_steps`)."""
    import deepspeed

    def scheduler(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: learning_rate_factor(step, spec.warmup_steps, total_steps)
        )

    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=[p for p in model.parameters() if p.requires_grad],
        config=deepspeed_config(spec, world_size),
        lr_scheduler=scheduler,
    )
    return engine


def run_training(
    model: torch.nn.Module,
    tokenizer,
    sequences: Sequence[TrainSequence],
    compute_loss: LossFunction,
    count_tokens: Callable[[torch.Tensor], torch.Tensor],
    label_dtype: torch.dtype,
    spec: TrainSpec,
    out_dir: str | os.PathLike,
    rank: int,
    world_size: int,
    units: Sequence[Sequence[int]] | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train `model` on `sequences` with DeepSpeed on this rank, save it to `out_dir`, return the result.

    All ranks must call this together with the same sequences. `compute_loss(engine, batch)` gives
    the mean loss of a micro-batch (`LossFunction`); `count_tokens(labels)` the number of labelled tokens it
    trained. `units` groups rows that must share a micro-batch (indices into `sequences`, each row in exactly
    one unit; a micro-batch holds `spec.micro_batch_size` units, each unit's rows next to each other in
    order); None: every sequence is a unit of its own. `on_step`, if given, is called after every optimizer step
    (`StepCallback`).
    """
    if not sequences:
        raise ValueError("no training sequences")
    units = [(row,) for row in range(len(sequences))] if units is None else [tuple(unit) for unit in units]
    if sorted(row for unit in units for row in unit) != list(range(len(sequences))):
        raise ValueError(f"units must hold each of the {len(sequences)} sequences exactly once")
    torch.manual_seed(spec.seed)
    total_steps = planned_steps(len(units), spec, world_size)
    if spec.gradient_checkpointing:
        use_cache = enable_gradient_checkpointing(model)
    engine = build_engine(model, spec, world_size, total_steps)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = unit_micro_batches(units, [len(s.input_ids) for s in sequences], spec, rank, world_size)
    # Batches grouped by length hold very different numbers of labelled tokens (a batch of short
    # sequences has few). Scaling each batch's mean loss by its labelled tokens over the average
    # makes every labelled token weigh the same, as it does when batches mix lengths.
    if spec.group_by_length:
        labels_per_sequence = sum(count_tokens(torch.tensor([s.labels])).item() for s in sequences) / len(sequences)
    step_losses = torch.zeros(total_steps, dtype=torch.float64, device=engine.device)
    tokens = torch.zeros((), dtype=torch.float64, device=engine.device)
    engine.train()
    started = time.perf_counter()
    log_every = max(1, total_steps // 10)
    for step in range(total_steps):
        for _ in range(spec.gradient_accumulation_steps):
            rows = next(batches)
            batch = collate([sequences[i] for i in rows], pad_token_id, label_dtype, engine.device)
            batch["row_index"] = torch.tensor(rows, dtype=torch.long, device=engine.device)
            loss = compute_loss(engine, batch)
            batch_tokens = count_tokens(batch["labels"]).double()
            if isinstance(loss, tuple):  # a loss that weighs its own terms
                loss, weighted_loss = loss
            else:
                weight = 1.0
                if spec.group_by_length:
                    weight = batch_tokens.item() / max(labels_per_sequence * len(batch["labels"]), 1e-9)
                weighted_loss = loss * weight
            engine.backward(weighted_loss)
            engine.step()
            step_losses[step] += loss.detach().double() / spec.gradient_accumulation_steps
            tokens += batch_tokens
        if on_step is not None:
            on_step(step + 1, total_steps, float(step_losses[step]))
        if rank == 0 and ((step + 1) % log_every == 0 or step + 1 == total_steps):
            append_progress(progress_path(out_dir), step + 1, total_steps, float(step_losses[step]),
                            time.perf_counter() - started)
    # One collective for all the reporting, after the loop: sum over ranks, then average the losses.
    totals = torch.cat([step_losses, tokens.reshape(1)])
    torch.distributed.all_reduce(totals)
    seconds = time.perf_counter() - started
    losses = (totals[:-1] / world_size).tolist()
    trained_tokens = int(totals[-1].item())
    result = TrainResult(
        steps=total_steps,
        losses=losses,
        first_loss=losses[0],
        last_loss=losses[-1],
        tokens=trained_tokens,
        seconds=seconds,
        tokens_per_s=trained_tokens / max(seconds, 1e-9),
        parameter_checksum=parameter_checksum(engine),
    )
    if rank == 0:
        logger.info(
            "trained %d steps in %.1f s: loss %.4f -> %.4f, %.0f tokens/s",
            result.steps, seconds, result.first_loss, result.last_loss, result.tokens_per_s,
        )
    if spec.gradient_checkpointing:
        model.config.use_cache = use_cache
    save_hf_checkpoint(engine, tokenizer, out_dir, rank)
    engine.destroy()
    del engine
    gc.collect()
    return result


def progress_path(out_dir: str | os.PathLike) -> Path:
    """The training log beside a checkpoint folder: `<out_dir>_train_log.jsonl` (rank 0's step losses)."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f"{out_dir.name}_train_log.jsonl")


def append_progress(path: Path, step: int, total_steps: int, loss: float, seconds: float) -> None:
    """Append one progress line (rank 0's loss at `step`); the driver tails this file while it waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": step, "total_steps": total_steps, "loss": loss, "seconds": seconds}) + "\n")


def _gathered(engine, parameters):
    """Context that holds the full values of `parameters` on every rank (ZeRO-3 partitions them)."""
    import deepspeed

    if engine.zero_optimization_partition_weights():
        return deepspeed.zero.GatheredParameters(list(parameters), modifier_rank=None)
    return contextlib.nullcontext()


def parameter_checksum(engine) -> float:
    """Sum of every parameter in float64, gathered one tensor at a time under ZeRO-3."""
    total = 0.0
    for parameter in engine.module.parameters():
        with _gathered(engine, [parameter]):
            total += parameter.detach().double().sum().item()
    return total


def save_hf_checkpoint(engine, tokenizer, out_dir: str | os.PathLike, rank: int) -> None:
    """Write the full model and tokenizer to `out_dir` with save_pretrained (rank 0); all ranks wait.

    The folder is written atomically (`lm.checkpoints`): a reader sees either the old checkpoint or the
    complete new one. Weights are stored in float32 whatever the training precision.
    """
    model = engine.module
    with _gathered(engine, model.parameters()):
        if rank == 0:
            state_dict, config = None, None
            if any(p.dtype != torch.float32 for p in model.parameters()):
                state_dict = {name: t.detach().float() if t.is_floating_point() else t
                              for name, t in model.state_dict().items()}
                # save_pretrained records the training dtype; the stored tensors are float32.
                config = copy.deepcopy(model.config)
                config.dtype = "float32"
            save_checkpoint(model, tokenizer, out_dir, state_dict=state_dict, config=config)
    torch.distributed.barrier()
