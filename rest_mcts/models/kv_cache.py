"""Shared-prefix forward passes: encode each distinct prefix once into a KV cache, then copy its cache rows
to every continuation of it (the `branch` samples drawn from one leaf, the children the PRM scores under
one parent), so that the search does not re-encode the same prefix for each of them.

Rows are left-padded; position ids come from the attention mask (as `generate` computes them), so a
padded row sees exactly the positions it would see alone.
"""

from __future__ import annotations

from typing import Sequence

import torch


def left_padded(rows: Sequence[Sequence[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of shape [rows, longest], each row's tokens at the right end."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            input_ids[index, width - len(row):] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, width - len(row):] = 1
    return input_ids.to(device), attention_mask.to(device)


def mask_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of every token counted over real tokens only (padding gets 0, as `generate` gives it 1: unused)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def encode_shared(body, rows: Sequence[Sequence[int]], pad_token_id: int, device):
    """One forward of `body` (a decoder's base model, e.g. `LlamaModel`) over the left-padded `rows`.

    Returns (cache, attention_mask, lengths): the KV cache of every row, its mask [rows, longest] and the
    number of real tokens of each row (the position the next token takes).
    """
    input_ids, attention_mask = left_padded(rows, pad_token_id, device)
    output = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=mask_positions(attention_mask),
                  use_cache=True)
    return output.past_key_values, attention_mask, attention_mask.sum(-1)


def select_rows(cache, index: torch.Tensor) -> None:
    """Keep (or repeat) the cache rows `index`, in that order, in place."""
    cache.batch_select_indices(index)
