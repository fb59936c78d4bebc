"""Policy SFT: next-token loss on the steps (and EOS) of verified-correct traces, prompt masked.

ReST-MCTS* trains the policy on the traces whose final answer the oracle verified; this module
turns `PolicyExample`s into labelled sequences and hands them to the shared DeepSpeed loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lm.data import PolicyExample
from lm.encoding import IGNORE_INDEX, encode_steps, policy_labels
from trainers.engine import (
    StepCallback,
    TrainResult,
    TrainSequence,
    TrainSpec,
    partitioned_loading,
    pick_device_and_backend,
    run_training,
)


def policy_sequences(tokenizer, examples: Sequence[PolicyExample]) -> list[TrainSequence]:
    """One sequence per example: BOS + prompt + steps + EOS, labels masking BOS and the prompt."""
    sequences = []
    for example in examples:
        encoded = encode_steps(tokenizer, example.prompt, example.steps, add_eos=True)
        sequences.append(TrainSequence(encoded.input_ids, policy_labels(encoded)))
    return sequences


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy of predicting token t+1 from position t, over labels != IGNORE_INDEX.

    logits: [batch, length, vocab]; labels: [batch, length] (the input ids, masked).
    """
    shifted_logits = logits[:, :-1, :].float()
    shifted_labels = labels[:, 1:]
    return F.cross_entropy(
        shifted_logits.reshape(-1, shifted_logits.size(-1)),
        shifted_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def _loss(engine, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return causal_lm_loss(logits, batch["labels"])


def count_predicted_tokens(labels: torch.Tensor) -> torch.Tensor:
    return (labels[:, 1:] != IGNORE_INDEX).sum()


def load_causal_lm(model_path: str | os.PathLike):
    """(tokenizer, fp32 causal LM) at `model_path`, after the accelerator is picked (DeepSpeed reads it at import)."""
    pick_device_and_backend()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path), AutoModelForCausalLM.from_pretrained(model_path,
                                                                                          dtype=torch.float32)


def train_policy(
    model_path: str | os.PathLike,
    examples: Sequence[PolicyExample],
    spec: TrainSpec,
    out_dir: str | os.PathLike,
    rank: int,
    world_size: int,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Fine-tune the causal LM at `model_path` on `examples`; save it (and its tokenizer) to `out_dir`.

    Every rank calls this with the same examples after `init_distributed`; each trains on its shard. `on_step`:
    called after every optimizer step (`trainers.engine.StepCallback`).
    """
    with partitioned_loading(spec, world_size):
        tokenizer, model = load_causal_lm(model_path)
    return run_training(
        model,
        tokenizer,
        policy_sequences(tokenizer, examples),
        compute_loss=_loss,
        count_tokens=count_predicted_tokens,
        label_dtype=torch.long,
        spec=spec,
        out_dir=out_dir,
        rank=rank,
        world_size=world_size,
        on_step=on_step,
    )
