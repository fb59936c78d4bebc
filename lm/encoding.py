"""How a (prompt, steps) pair becomes token ids, and which token the PRM reads for each step.

The prompt and every step are tokenized separately and concatenated, so the ids of a prefix are
always a prefix of the ids of any longer solution. A BPE tokenizer can therefore never merge a
step's delimiter with the characters that follow it, and the PRM reads the same token (the last
token of the step, delimiter included) in training and in scoring.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EncodedSteps:
    """Token ids of prompt + steps; `step_end_positions[i]` indexes the last token of step i."""

    input_ids: list[int]
    prompt_length: int
    step_end_positions: list[int]


_SEGMENTS: weakref.WeakKeyDictionary[object, dict[str, tuple[int, ...]]] = weakref.WeakKeyDictionary()
_SEGMENTS_PER_TOKENIZER = 200_000


def _segment_ids(tokenizer, text: str) -> list[int]:
    """The tokens of `text` alone (no special tokens), remembered per tokenizer: a search encodes the same
    prompts and steps again at every simulation."""
    try:
        known = _SEGMENTS.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no memory
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = known.get(text)
    if ids is None:
        if len(known) >= _SEGMENTS_PER_TOKENIZER:
            known.clear()
        ids = known[text] = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(ids)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """BOS (if the tokenizer has one) followed by the prompt's tokens. A prompt rendered by a chat template that
    writes BOS itself already starts with it (special tokens in the text are read as themselves): no second one."""
    ids = _segment_ids(tokenizer, prompt)
    bos = tokenizer.bos_token_id
    if bos is not None and not (ids and ids[0] == bos):
        ids = [bos] + ids
    return ids


def encode_step(tokenizer, step_text: str) -> list[int]:
    """Tokens of one step on its own (no special tokens)."""
    return _segment_ids(tokenizer, step_text)


def encode_steps(tokenizer, prompt: str, steps: Sequence[str], add_eos: bool = False) -> EncodedSteps:
    """Encode prompt and steps segment by segment; with `add_eos`, append EOS after the last step."""
    input_ids = encode_prompt(tokenizer, prompt)
    prompt_length = len(input_ids)
    step_end_positions = []
    for step_text in steps:
        step_ids = encode_step(tokenizer, step_text)
        if not step_ids:
            raise ValueError(f"step {step_text!r} encodes to no tokens")
        input_ids.extend(step_ids)
        step_end_positions.append(len(input_ids) - 1)
    if add_eos:
        input_ids.append(tokenizer.eos_token_id)
    return EncodedSteps(input_ids, prompt_length, step_end_positions)


IGNORE_INDEX = -100


def policy_labels(encoded: EncodedSteps) -> list[int]:
    """Next-token labels for SFT: the prompt is masked (IGNORE_INDEX), the steps (and EOS) are learned."""
    return [IGNORE_INDEX] * encoded.prompt_length + encoded.input_ids[encoded.prompt_length :]


def prm_labels(encoded: EncodedSteps, step_values: Sequence[float]) -> list[float]:
    """Per-token PRM targets: `step_values[i]` at step i's last token, IGNORE_INDEX everywhere else."""
    if len(step_values) != len(encoded.step_end_positions):
        raise ValueError(
            f"{len(step_values)} step values for {len(encoded.step_end_positions)} steps"
        )
    labels = [float(IGNORE_INDEX)] * len(encoded.input_ids)
    for position, value in zip(encoded.step_end_positions, step_values):
        labels[position] = float(value)
    return labels
