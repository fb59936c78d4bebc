"""Shared-prefix forward passes: encode each distinct prefix once into a KV cache, then copy its cache rows
to every continuation of it (the `branch` samples drawn from one leaf, the children the PRM scores under
one parent), so that the search does not re-encode the same prefix for each of them; and keep the KV
of every tree node across calls (`PrefixStore`), so that expanding or scoring under a node encodes
only the new step.

Rows are left-padded; position ids come from the attention mask (as `generate` computes them), so a
padded row sees exactly the positions it would see alone.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache

import torch
from transformers.cache_utils import Cache, DynamicLayer


def padded(rows: Sequence[Sequence[int]], pad_token_id: int, device, left: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of shape [rows, longest], each row's tokens at the right end (`left`
    padding, for decoding) or at the left end (right padding)."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            columns = slice(width - len(row), width) if left else slice(0, len(row))
            input_ids[index, columns] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, columns] = 1
    return input_ids.to(device), attention_mask.to(device)


def mask_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of every token counted over real tokens only (padding gets 0, as `generate` gives it 1: unused)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def encode_shared(body, rows: Sequence[Sequence[int]], pad_token_id: int, device):
    """One forward of `body` (a decoder's base model, e.g. `LlamaModel`) over the left-padded `rows`.

    Returns (cache, attention_mask, lengths): the KV cache of every row, its mask [rows, longest] and the
    number of real tokens of each row (the position the next token takes).
    """
    input_ids, attention_mask = padded(rows, pad_token_id, device)
    output = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=mask_positions(attention_mask),
                  use_cache=True)
    return output_cache(output), attention_mask, attention_mask.sum(-1)


CACHE_ARGUMENTS = ("cache", "past_key_values")
"""Names a decoder's `forward` has given its KV-cache argument, newest first (transformers 5.24 renamed
`past_key_values` to `cache`)."""


def cache_argument(model) -> str | None:
    """The name of the KV-cache argument `model.forward` takes, read from its signature; None if it takes none."""
    return _cache_argument_of(type(model))


@cache
def _cache_argument_of(model_class: type) -> str | None:
    parameters = inspect.signature(model_class.forward).parameters
    return next((name for name in CACHE_ARGUMENTS if name in parameters), None)


def with_cache(model, cache) -> dict:
    """Keyword arguments that hand `cache` to `model.forward` under the name it takes."""
    name = cache_argument(model)
    if name is None:
        raise TypeError(f"{type(model).__name__}.forward takes no KV cache (none of {CACHE_ARGUMENTS})")
    return {name: cache, "use_cache": True}


def output_cache(output):
    """The KV cache a forward returned, under whichever name the installed transformers gives it."""
    for name in CACHE_ARGUMENTS:
        cache = getattr(output, name, None)
        if cache is not None:
            return cache
    raise ValueError(f"{type(output).__name__} holds no KV cache (none of {CACHE_ARGUMENTS}); pass use_cache=True")


def select_rows(cache, index: torch.Tensor) -> None:
    """Keep (or repeat) the cache rows `index`, in that order, in place."""
    cache.batch_select_indices(index)


LayerKV = list[tuple[torch.Tensor, torch.Tensor]]
"""One sequence's keys and values per layer, each [heads, tokens, head_dim]."""


class PrefixStore:
    """The KV of token prefixes kept across calls, least recently used dropped first beyond `max_bytes`.

    In a search tree every node's prefix is encoded when the node is made; keeping that encoding lets the
    node's expansion (and the PRM scoring of its children) encode only what is new. Keys are the token ids
    whose keys and values are stored.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], LayerKV] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(layers: LayerKV) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)

    def get(self, key: tuple[int, ...]) -> LayerKV | None:
        layers = self.entries.get(key)
        if layers is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return layers

    def put(self, key: tuple[int, ...], layers: LayerKV) -> None:
        if key in self.entries or self.max_bytes <= 0:
            return
        size = self._size(layers)
        if size > self.max_bytes:
            return
        self.entries[key] = layers
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= self._size(dropped)


def row_span(cache, row: int, start: int, stop: int) -> LayerKV:
    """Copies of one row's keys and values at positions [start, stop) of every layer."""
    return [(layer.keys[row, :, start:stop].clone(), layer.values[row, :, start:stop].clone())
            for layer in cache.layers]


def is_plain_cache(cache) -> bool:
    """True when every layer keeps all positions (no sliding window or other layer kind), so spans can be stored."""
    return all(type(layer) in (DynamicLayer, RoomyLayer) for layer in cache.layers)


class RoomyLayer(DynamicLayer):
    """A full-attention cache layer whose key and value buffers have room for more positions after the ones
    written: decoding writes each new position in place, where transformers' `DynamicLayer` concatenates (a copy
    of the whole cache at every token). The model attends over the whole contiguous buffer; positions not written
    yet lie after the query, so the causal mask hides them (the 2-D attention mask passed must cover the buffer).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.keys, self.values, self.length = keys, values, length
        self.device = keys.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        new = key_states.shape[-2]
        if self.length + new > self.keys.shape[-2]:
            raise ValueError(f"no room for {new} more positions after {self.length} in a buffer of "
                             f"{self.keys.shape[-2]} (give with_room more)")
        self.keys[:, :, self.length:self.length + new] = key_states
        self.values[:, :, self.length:self.length + new] = value_states
        self.length += new
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[-2], 0


def with_room(cache, room: int):
    """`cache` with room for `room` more positions in every layer (`RoomyLayer`), copied once; a cache that is not
    plain is returned as it is. The attention mask passed with it must then be as wide as the buffers
    (`cache.layers[0].keys.shape[-2]`)."""
    if not is_plain_cache(cache):
        return cache
    layers = []
    for layer in cache.layers:
        length = layer.get_seq_length()
        buffers = []
        for tensor in (layer.keys, layer.values):
            buffer = tensor.new_zeros((tensor.shape[0], tensor.shape[1], length + room, tensor.shape[3]))
            buffer[:, :, :length] = tensor[:, :, :length]
            buffers.append(buffer)
        layers.append(RoomyLayer(buffers[0], buffers[1], length))
    return Cache(layers=layers)


def assemble(sequences: Sequence[LayerKV], device, room: int = 0) -> tuple[object, torch.Tensor, torch.Tensor]:
    """A batch cache from per-sequence keys and values, left-padded with zeros (masked); (cache, mask, lengths).

    Per layer and part, one concatenation of all sequences and one indexed write into the padded batch. With
    `room`, the layers are `RoomyLayer`s with that many free positions after the sequences (the mask returned
    still covers only the sequences).
    """
    lengths = torch.tensor([layers[0][0].shape[1] for layers in sequences], device=device)
    width = int(lengths.max())
    rows = torch.repeat_interleave(torch.arange(len(sequences), device=device), lengths)
    offsets = torch.arange(int(lengths.sum()), device=device) - torch.repeat_interleave(
        torch.cumsum(lengths, 0) - lengths, lengths)
    columns = torch.repeat_interleave(width - lengths, lengths) + offsets
    layers = []
    for layer_index in range(len(sequences[0])):
        buffers = []
        for part in (0, 1):
            flat = torch.cat([layers[layer_index][part] for layers in sequences], dim=1)  # [heads, tokens, dim]
            buffer = flat.new_zeros((len(sequences), flat.shape[0], width + room, flat.shape[2]))
            buffer[rows, :, columns] = flat.transpose(0, 1)
            buffers.append(buffer)
        layers.append(RoomyLayer(buffers[0], buffers[1], width) if room else _dynamic_layer(*buffers))
    positions = torch.arange(width, device=device)
    attention_mask = (positions[None, :] >= (width - lengths)[:, None]).long()
    return Cache(layers=layers), attention_mask, lengths


def _dynamic_layer(keys: torch.Tensor, values: torch.Tensor) -> DynamicLayer:
    """transformers' growing cache layer holding `keys` and `values` (without copying them)."""
    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
    return layer


def encode_with_store(body, rows: Sequence[Sequence[int]], pad_token_id: int, device, store: PrefixStore | None,
                      order: Sequence[int] | None = None, room: int = 0):
    """Like `encode_shared`, but rows already in `store` are not encoded again, and new ones are stored.

    The batch returned holds the rows in `order` (indices into `rows`, repeats allowed; default: all, in
    turn), so that copies for several samples of one row cost no extra pass over the cache. Without a
    store (or for a model whose cache is not plain) the rows are encoded as `encode_shared` does. With `room`,
    a plain cache has that many free positions in every layer (`RoomyLayer`).
    """
    order = list(range(len(rows))) if order is None else list(order)
    if store is None:
        cache, attention_mask, lengths = _encoded_in_order(body, rows, pad_token_id, device, order)
        return (with_room(cache, room) if room else cache), attention_mask, lengths
    found = [store.get(tuple(row)) for row in rows]
    missing = [index for index, layers in enumerate(found) if layers is None]
    if missing:
        cache, attention_mask, lengths = encode_shared(body, [rows[i] for i in missing], pad_token_id, device)
        if not is_plain_cache(cache):
            return _encoded_in_order(body, rows, pad_token_id, device, order)  # no room: it is not plain
        width = attention_mask.shape[1]
        for position, index in enumerate(missing):
            found[index] = row_span(cache, position, width - int(lengths[position]), width)
            store.put(tuple(rows[index]), found[index])
    return assemble([found[index] for index in order], device, room)


def _encoded_in_order(body, rows, pad_token_id: int, device, order: list[int]):
    cache, attention_mask, lengths = encode_shared(body, rows, pad_token_id, device)
    index = torch.tensor(order, device=attention_mask.device)
    select_rows(cache, index)
    return cache, attention_mask[index], lengths[index]
