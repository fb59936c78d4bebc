"""The PRM as a `ScoreFn`: sigmoid of the one-label token classifier at the last token of a prefix's last step.

The token read is `encode_steps(...).step_end_positions[-1]`, the same position at which
`encoding.prm_labels` puts the training target (DESIGN.md section 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lm.encoding import EncodedSteps, encode_step, encode_steps
from lm.kv_cache import (
    PrefixStore,
    cache_argument,
    encode_with_store,
    is_plain_cache,
    padded,
    row_span,
    with_cache,
)
from search.types import Prefix


class PRMScorer:
    """Scores prefixes with a PRM (`AutoModelForTokenClassification`, num_labels=1); `score` matches `ScoreFn`.

    A prefix with no steps (the bare prompt) has no step to score and raises `ValueError`: the PRM is never
    trained on prompt tokens, so a score there would mean nothing. The search gives the root its own value.
    """

    def __init__(self, model, tokenizer, device: str | torch.device = "cpu", batch_size: int = 128,
                 shared_prefix: bool = True, kv_store_mb: float = 0.0):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if model.config.num_labels != 1:
            raise ValueError(f"the PRM must have one label, this model has {model.config.num_labels}")
        pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_token_id is None:
            raise ValueError("the tokenizer needs a pad or EOS token")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.pad_token_id = pad_token_id
        self.shared_prefix = shared_prefix and _takes_a_cache(model)
        """Encode siblings' common prefix once (decoder PRMs with a `score` head, e.g. LlamaForTokenClassification)."""
        self.kv_store = PrefixStore(int(kv_store_mb * 2**20)) if kv_store_mb > 0 and self.shared_prefix else None
        """KV of every prefix scored so far, kept across calls: a node scored as a child is not encoded again
        when its own children are scored."""

    def encode(self, prefix: Prefix) -> EncodedSteps:
        """The ids the PRM reads for `prefix` (no EOS), exactly as training encodes them."""
        return encode_steps(self.tokenizer, prefix.prompt, prefix.steps)

    def score(self, prefixes: Sequence[Prefix]) -> list[float]:
        """PRM value in [0, 1] of each prefix's last step, in prefix order; batches of `batch_size`.

        With `shared_prefix`, prefixes that differ only in their last step (siblings) share one encoding
        of what comes before it; otherwise every prefix is encoded whole (right-padded).
        """
        if any(not prefix.steps for prefix in prefixes):
            raise ValueError("a prefix with no steps has no step to score")
        if self.shared_prefix:
            return self._score_siblings(prefixes)
        encoded = [self.encode(prefix) for prefix in prefixes]
        scores = [0.0] * len(encoded)
        # Batches of similar lengths waste less compute on padding.
        order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            values = self._step_values([encoded[index] for index in batch], last_step_only=True)
            for index, value in zip(batch, values):
                scores[index] = value[0]
        return scores

    __call__ = score

    def _score_siblings(self, prefixes: Sequence[Prefix]) -> list[float]:
        """Encode each distinct parent (the prefix without its last step) once, then only the last steps.

        The head reads the last token of each last step, the same token `encode_steps` marks: a prefix's
        ids are its parent's ids followed by its last step's ids, segment by segment.
        """
        parents: dict[tuple[str, tuple[str, ...]], int] = {}
        parent_of = [parents.setdefault((p.prompt, p.steps[:-1]), len(parents)) for p in prefixes]
        parent_ids = [encode_steps(self.tokenizer, prompt, steps).input_ids for prompt, steps in parents]
        step_ids = [encode_step(self.tokenizer, prefix.steps[-1]) for prefix in prefixes]
        scores = [0.0] * len(prefixes)
        order = sorted(range(len(prefixes)), key=lambda index: parent_of[index])
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            chunk_parents = sorted({parent_of[index] for index in chunk})
            local = {parent: row for row, parent in enumerate(chunk_parents)}
            with torch.inference_mode():
                rows = [local[parent_of[index]] for index in chunk]
                cache, parent_mask, lengths = encode_with_store(
                    self.model.base_model, [parent_ids[parent] for parent in chunk_parents], self.pad_token_id,
                    self.device, self.kv_store, order=rows)
                steps = [step_ids[index] for index in chunk]
                input_ids, step_mask = padded(steps, self.pad_token_id, self.device, left=False)
                hidden = self.model.base_model(
                    input_ids=input_ids,
                    attention_mask=torch.cat([parent_mask, step_mask], dim=-1),
                    position_ids=lengths[:, None] + torch.arange(input_ids.shape[1], device=self.device),
                    **with_cache(self.model.base_model, cache),
                ).last_hidden_state
                if self.kv_store is not None and is_plain_cache(cache):
                    # Each child becomes a parent once expanded: keep its whole prefix (parent, then its step).
                    parent_width = parent_mask.shape[1]
                    for row, index in enumerate(chunk):
                        length = int(lengths[row])
                        span = row_span(cache, row, parent_width - length, parent_width + len(steps[row]))
                        self.kv_store.put(tuple(parent_ids[parent_of[index]] + steps[row]), span)
                last = torch.tensor([len(ids) - 1 for ids in steps], device=self.device)
                logits = self.model.score(hidden[torch.arange(len(chunk), device=self.device), last])[:, 0]
            for index, value in zip(chunk, torch.sigmoid(logits.float()).cpu().tolist()):
                scores[index] = value
        return scores

    def score_all_steps(self, prefix: Prefix) -> list[float]:
        """PRM value of every step of `prefix` from one forward pass: element i reads step i's last token."""
        return self._step_values([self.encode(prefix)], last_step_only=False)[0]

    def _step_values(self, encoded: list[EncodedSteps], last_step_only: bool) -> list[list[float]]:
        """One right-padded forward; sigmoid of the logit at the step end positions of each sequence."""
        input_ids, attention_mask = padded([item.input_ids for item in encoded], self.pad_token_id, self.device,
                                           left=False)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[..., 0]
        values = torch.sigmoid(logits.float()).cpu()
        return [
            values[row, item.step_end_positions[-1:] if last_step_only else item.step_end_positions].tolist()
            for row, item in enumerate(encoded)
        ]


def _takes_a_cache(model) -> bool:
    """Whether the PRM is a decoder whose body takes a KV cache (under any name) and whose head is a `score` layer."""
    body = getattr(model, "base_model", None)
    return (body is not None and body is not model and isinstance(getattr(model, "score", None), torch.nn.Linear)
            and cache_argument(body) is not None)
