"""PRM training: regress each step's inferred target (hard estimate or ReST-MCTS* quality value, in [0, 1]) with BCE.

The PRM is a one-output token classifier read at the last token of each step. Because it attends
causally and `encode_steps` tokenizes step by step, the hidden state at a step's last token is the
same whether the sequence stops there or goes on. So value examples whose steps are a prefix of a
longer example's steps are merged into that longer sequence, with a target at each of their step
ends: one forward pass trains every prefix of a path, and each labelled position still weighs as
much as one example would.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lm.data import ValueExample
from lm.encoding import IGNORE_INDEX, encode_steps, prm_labels
from trainers.engine import (
    StepCallback,
    TrainResult,
    TrainSequence,
    TrainSpec,
    partitioned_loading,
    pick_device_and_backend,
    run_training,
)


def prm_sequences(tokenizer, examples: Sequence[ValueExample]) -> list[TrainSequence]:
    """Merge prefix examples into the longest paths that contain them; one sequence per path.

    Within a (problem_id, prompt) group, examples are taken longest first; an example whose steps
    are a prefix of an already kept path puts its target at that path's step
    `len(steps) - 1`, otherwise it starts a new path. Examples with the same prompt and steps
    (duplicates) share one target: the mean of theirs. Examples with no steps
    carry no step end to read and are skipped.
    """
    groups: dict[tuple[str, str], list[ValueExample]] = defaultdict(list)
    for example in examples:
        if example.steps:
            groups[(example.problem_id, example.prompt)].append(example)
    sequences = []
    for (_, prompt), group in groups.items():
        paths: list[tuple[str, ...]] = []
        path_of_prefix: dict[tuple[str, ...], int] = {}
        values: list[dict[int, list[float]]] = []
        for example in sorted(group, key=lambda e: -len(e.steps)):
            path = path_of_prefix.get(example.steps)
            if path is None:
                path = len(paths)
                paths.append(example.steps)
                values.append(defaultdict(list))
                for length in range(1, len(example.steps) + 1):
                    path_of_prefix.setdefault(example.steps[:length], path)
            values[path][len(example.steps) - 1].append(example.target)
        for steps, step_values in zip(paths, values):
            encoded = encode_steps(tokenizer, prompt, steps)
            targets = [
                sum(step_values[i]) / len(step_values[i]) if i in step_values else IGNORE_INDEX
                for i in range(len(steps))
            ]
            sequences.append(TrainSequence(encoded.input_ids, prm_labels(encoded, targets)))
    return sequences


def prm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits against soft targets over positions whose label is not IGNORE_INDEX.

    logits: [batch, length, 1] (or [batch, length]); labels: [batch, length] floats in [0, 1] or -100.
    """
    logits = logits.reshape(labels.shape).float()
    labelled = labels != IGNORE_INDEX
    return F.binary_cross_entropy_with_logits(logits[labelled], labels[labelled].float())


def _loss(engine, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return prm_loss(logits, batch["labels"])


def _count_labelled_tokens(labels: torch.Tensor) -> torch.Tensor:
    return (labels != IGNORE_INDEX).sum()


def train_prm(
    model_path: str | os.PathLike,
    examples: Sequence[ValueExample],
    spec: TrainSpec,
    out_dir: str | os.PathLike,
    rank: int,
    world_size: int,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train the token-classification PRM at `model_path` on `examples`; save it to `out_dir`.

    Every rank calls this with the same examples after `init_distributed`; each trains on its shard. `on_step`:
    called after every optimizer step (`trainers.engine.StepCallback`).
    """
    pick_device_and_backend()
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from lm.build import ensure_token_classifier

    ensure_token_classifier(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    with partitioned_loading(spec, world_size):
        model = AutoModelForTokenClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
    return run_training(
        model,
        tokenizer,
        prm_sequences(tokenizer, examples),
        compute_loss=_loss,
        count_tokens=_count_labelled_tokens,
        label_dtype=torch.float32,
        spec=spec,
        out_dir=out_dir,
        rank=rank,
        world_size=world_size,
        on_step=on_step,
    )
