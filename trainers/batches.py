"""Which sequences each rank trains on, micro-batch by micro-batch: a seeded shuffle per epoch shared by the
ranks, optional grouping by length, and right-padded batches. No DeepSpeed or torch.distributed here."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from lm.encoding import IGNORE_INDEX
from trainers.spec import TrainSequence, TrainSpec


def shard_indices(num_sequences: int, rank: int, world_size: int, seed: int, epoch: int) -> list[int]:
    """This rank's sequence indices for one epoch, like torch's DistributedSampler(shuffle=True).

    A permutation seeded by (seed, epoch), padded by wrapping around to a multiple of world_size,
    then every world_size-th index from `rank`: all ranks get the same number of sequences.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(num_sequences, generator=generator).tolist()
    per_rank = math.ceil(num_sequences / world_size)
    order = (order * math.ceil(per_rank * world_size / num_sequences))[: per_rank * world_size]
    return order[rank::world_size]


LENGTH_GROUP_WINDOW = 16
"""With group_by_length, sequences are sorted by length within windows of this many global batches."""


def length_grouped_batches(
    lengths: Sequence[int], micro_batch_size: int, rank: int, world_size: int, seed: int, epoch: int
) -> list[list[int]]:
    """This rank's micro-batches for one epoch, each of sequences of similar length.

    All ranks draw the same shuffled epoch (as shard_indices does), cut it into windows of
    LENGTH_GROUP_WINDOW global batches (micro_batch_size * world_size sequences each), sort each
    window by length, cut it into global batches and deal each global batch out to the ranks, so
    the ranks of one step hold similar lengths and wait little for each other. The global batches are
    then shuffled (the same way on every rank). Every rank gets the same number of micro-batches;
    a window's last global batch may be short.
    """
    num_sequences = len(lengths)
    global_batch = micro_batch_size * world_size
    order = [index for r in range(world_size) for index in shard_indices(num_sequences, r, world_size, seed, epoch)]
    batches: list[list[int]] = []
    window = global_batch * LENGTH_GROUP_WINDOW
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: -lengths[index])
        batches.extend(chunk[i : i + global_batch] for i in range(0, len(chunk), global_batch))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch + 7)
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return [batch[rank::world_size] for batch in shuffled]


def micro_batches(
    num_sequences: int, spec: TrainSpec, rank: int, world_size: int, lengths: Sequence[int] | None = None
) -> Iterator[list[int]]:
    """Endless micro-batches of sequence indices for this rank, epoch after epoch (grouped by
    length when `spec.group_by_length` and the sequence `lengths` are given)."""
    epoch = 0
    while True:
        if spec.group_by_length and lengths is not None:
            yield from length_grouped_batches(lengths, spec.micro_batch_size, rank, world_size, spec.seed, epoch)
        else:
            indices = shard_indices(num_sequences, rank, world_size, spec.seed, epoch)
            for start in range(0, len(indices), spec.micro_batch_size):
                yield indices[start : start + spec.micro_batch_size]
        epoch += 1


def unit_micro_batches(
    units: Sequence[Sequence[int]], row_lengths: Sequence[int], spec: TrainSpec, rank: int, world_size: int
) -> Iterator[list[int]]:
    """Endless micro-batches of row indices for this rank, made of whole units: `micro_batches` over the units
    (a unit's length is its longest row's), each unit's rows kept together, in their order within the unit.

    A unit is rows that must share a micro-batch (a preference pair's chosen and rejected rows), so neither
    length grouping nor sharding can split it; `spec.micro_batch_size` counts units. With one row per unit
    this is `micro_batches` over the rows.
    """
    unit_lengths = [max(row_lengths[row] for row in unit) for unit in units]
    for batch in micro_batches(len(units), spec, rank, world_size, unit_lengths):
        yield [row for unit in batch for row in units[unit]]


def collate(
    sequences: Sequence[TrainSequence], pad_token_id: int, label_dtype: torch.dtype, device
) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch: input_ids/attention_mask/labels of shape [batch, longest]."""
    longest = max(len(s.input_ids) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    labels = torch.full((len(sequences), longest), IGNORE_INDEX, dtype=label_dtype)
    for row, sequence in enumerate(sequences):
        length = len(sequence.input_ids)
        input_ids[row, :length] = torch.tensor(sequence.input_ids, dtype=torch.long)
        attention_mask[row, :length] = 1
        labels[row, :length] = torch.tensor(sequence.labels, dtype=label_dtype)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "labels": labels.to(device),
    }
