"""The policy as a `ProposeFn`: batched sampling of the next reasoning step for many prefixes at once.

All prefixes of a call are decoded together (split only above `max_batch_sequences` sequences),
`num_samples` samples each, stopping every sequence at its first step delimiter or EOS. By default
each prefix is encoded once and its KV cache shared by its samples, and a sequence leaves the batch as
soon as it stops (`kv_cache.py`); `decode="generate"` uses transformers' `generate` instead.
Prefixes are tokenized only through `encoding.encode_steps`, so the policy sees the
same ids that training and the PRM see.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from lm.encoding import encode_steps
from lm.kv_cache import (
    PrefixStore,
    RoomyLayer,
    cache_argument,
    encode_with_store,
    is_plain_cache,
    padded,
    row_span,
    select_rows,
    with_cache,
)
from search.types import Prefix, ProposedStep


def decodes_with_a_cache(model) -> bool:
    """Whether `model` can run the cached decode loop: a forward that takes a KV cache, on a separate body."""
    return cache_argument(model) is not None and getattr(model, "base_model", model) is not model


class StepParser:
    """How generated token ids become a step, shared by every step sampler (this module's and the vLLM engine's,
    `lm.vllm_engine`): which tokens stop a step, where the step ends, its text, its token count and whether it is
    final (see `StepSampler` for the rules)."""

    def __init__(self, tokenizer, delimiter: str, is_final_step: Callable[[str], bool], max_step_tokens: int,
                 end_token_ids: int | Sequence[int] | None = None):
        """`end_token_ids`: the model's own ends of text beside the tokenizer's EOS, as a generation config writes
        its `eos_token_id` (one id, a list of them, or None)."""
        if not delimiter:
            raise ValueError("delimiter must be a non-empty string")
        if max_step_tokens < 1:
            raise ValueError("max_step_tokens must be at least 1")
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs an EOS and a pad token")
        self.tokenizer = tokenizer
        self.delimiter = delimiter
        self.is_final_step = is_final_step
        self.max_step_tokens = max_step_tokens
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        delimiter_token_ids = [
            token_id
            for token_id in range(len(tokenizer))
            if delimiter in tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
        ]
        ends = [] if end_token_ids is None else [end_token_ids] if isinstance(end_token_ids, int) else end_token_ids
        self.end_token_ids = frozenset([self.eos_token_id, *ends])
        """EOS and the model's other ends of text (a chat model's end of turn, from its generation config)."""
        self.stop_token_ids = sorted(self.end_token_ids) + [i for i in delimiter_token_ids
                                                            if i not in self.end_token_ids]
        """The ends of text and every token whose text contains the delimiter: generation stops at any of them."""
        self._stop_token_set = frozenset(self.stop_token_ids)
        delimiter_ids = tokenizer(delimiter, add_special_tokens=False)["input_ids"]
        self.stop_sequence = tuple(delimiter_ids) if len(delimiter_ids) > 1 else ()
        """A delimiter of several tokens (a verifier's question): the cached decode also stops a row whose last
        tokens are these (a tokenizer may spell the same text otherwise; `_step_end` cuts at the text either way)."""

    def _to_step(self, token_ids: list[int]) -> ProposedStep:
        """Turn one row of generated ids into a step: cut at the first stop, count, decode, classify."""
        end, ended_by_eos = self._step_end(token_ids)
        step_ids = token_ids[: end + 1]
        text = self._decode(step_ids[:-1] if ended_by_eos else step_ids)
        cut = text.find(self.delimiter)
        if cut >= 0:
            text = text[: cut + len(self.delimiter)]
        is_final = ended_by_eos or cut < 0 or bool(self.is_final_step(text))
        return ProposedStep(text=text, num_tokens=len(step_ids), is_final=is_final)

    def _step_end(self, token_ids: list[int]) -> tuple[int, bool]:
        """Index of the token that ends the step, and whether it is EOS.

        Without any stop, the step runs to the last generated token (max_step_tokens of them: a row without a stop
        is never padded, since generation only stops early when every row has stopped).
        """
        stop = next((i for i, token_id in enumerate(token_ids) if token_id in self._stop_token_set), None)
        before_stop = token_ids if stop is None else token_ids[:stop]
        if len(self.delimiter) > 1 and self.delimiter in self._decode(before_stop):
            # A delimiter spread over several tokens, completed before any stop token.
            return next(i for i in range(len(before_stop)) if self.delimiter in self._decode(token_ids[: i + 1])), False
        if stop is None:
            return len(token_ids) - 1, False
        return stop, token_ids[stop] in self.end_token_ids

    def _decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


class StepSampler(StepParser):
    """Samples next steps from a causal LM; `propose` matches `search.types.ProposeFn`.

    A step ends at the first generated token whose text contains `delimiter` (that token is kept and
    counted), at EOS (counted, not part of the text), or after `max_step_tokens` tokens. The step is
    final (`is_final`) when it ended at EOS, when `is_final_step(text)` says it holds a final answer,
    or when it was cut at `max_step_tokens` without a delimiter: a step that runs away is ended as a
    terminal node rather than continued from an arbitrary cut.

    If the last token of a step carries characters after the delimiter (a BPE merge like "\\n7"),
    the text is cut just after the delimiter; the characters after it are dropped and the next step
    is generated afresh from the re-encoded prefix. A delimiter longer than one token does not stop
    `generate` early; the step is still cut at its first occurrence and `num_tokens` counts the tokens
    up to the one that completes it. Special tokens the model emits inside a step are counted but left
    out of the text; a step can therefore be empty (e.g. EOS at once), which the search drops.
    """

    def __init__(
        self,
        model,
        tokenizer,
        delimiter: str,
        is_final_step: Callable[[str], bool],
        max_step_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        device: str | torch.device = "cpu",
        max_batch_sequences: int = 256,
        seed: int | None = None,
        decode: str = "cached",
        kv_store_mb: float = 0.0,
        greedy_first: bool = False,
    ):
        if max_batch_sequences < 1:
            raise ValueError("max_batch_sequences must be at least 1")
        if decode not in ("cached", "generate"):
            raise ValueError(f"decode must be 'cached' or 'generate', got {decode!r}")
        if decode == "cached" and not decodes_with_a_cache(model):
            raise ValueError(f"decode='cached' needs a decoder whose forward takes a KV cache; "
                             f"{type(model).__name__} does not (use decode='generate')")
        if temperature <= 0:
            raise ValueError("temperature must be positive; use greedy() for greedy decoding")
        super().__init__(tokenizer, delimiter, is_final_step, max_step_tokens, model.generation_config.eos_token_id)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.temperature = temperature
        self.top_k = top_k
        self.max_batch_sequences = max_batch_sequences
        self.seed = seed
        self.decode = decode
        """'cached': our KV-cache loop (prompt encoded once per prefix, stopped rows dropped); 'generate':
        transformers' `generate` (for models whose forward does not take a cache, and for comparison)."""
        self.greedy_first = greedy_first
        """`propose` returns the argmax step first and samples the rest, so a search whose ties go to the
        first candidate follows greedy decoding wherever its scorer does not tell the candidates apart."""
        self.kv_store = PrefixStore(int(kv_store_mb * 2**20)) if kv_store_mb > 0 and decode == "cached" else None
        """KV of the prefixes this sampler encoded or generated, kept across calls (a search tree's nodes), so
        expanding a node encodes nothing again; None: every call encodes its prompts."""
        self._calls = 0

    def reseed(self, seed: int) -> None:
        """Restart the private sampling stream at `seed` (calls then draw seed, seed + 1, ...)."""
        self.seed = seed
        self._calls = 0

    def propose(self, prefixes: Sequence[Prefix], num_samples: int) -> list[list[ProposedStep]]:
        """For each prefix, `num_samples` sampled next steps (duplicates possible), in prefix order; with
        `greedy_first`, the first of them is the argmax step."""
        if not self.greedy_first:
            return self._generate(prefixes, num_samples, do_sample=True)
        if num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        if self.decode == "cached":
            # One decode loop: the first row of each prefix takes the argmax token, the others sample.
            return self._generate(prefixes, num_samples, do_sample=True, greedy_first=True)
        firsts = self.greedy(prefixes)
        if num_samples == 1:
            return [[first] for first in firsts]
        samples = self._generate(prefixes, num_samples - 1, do_sample=True)
        return [[first] + rest for first, rest in zip(firsts, samples)]

    __call__ = propose

    def greedy(self, prefixes: Sequence[Prefix]) -> list[ProposedStep]:
        """The greedy (argmax) next step of each prefix: one step per prefix, for chain-of-thought evaluation."""
        return [steps[0] for steps in self._generate(prefixes, 1, do_sample=False)]

    def _generate(self, prefixes: Sequence[Prefix], num_samples: int, do_sample: bool,
                  greedy_first: bool = False) -> list[list[ProposedStep]]:
        if num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        prompts = [encode_steps(self.tokenizer, prefix.prompt, prefix.steps).input_ids for prefix in prefixes]
        results: list[list[ProposedStep]] = [[] for _ in prefixes]
        # Chunks of similar lengths waste less compute on padding when a call must be split.
        order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
        samples_per_call = min(num_samples, self.max_batch_sequences)
        prefixes_per_call = max(1, self.max_batch_sequences // samples_per_call)
        with self._rng_scope(), torch.inference_mode():
            for start in range(0, len(order), prefixes_per_call):
                chunk = order[start : start + prefixes_per_call]
                remaining = num_samples
                while remaining > 0:
                    count = min(remaining, samples_per_call)
                    generated = self._generate_chunk([prompts[index] for index in chunk], count, do_sample,
                                                     greedy_first and remaining == num_samples)
                    for row, token_ids in enumerate(generated):
                        results[chunk[row // count]].append(self._to_step(token_ids))
                    remaining -= count
        return results

    def _generate_chunk(self, prompts: list[list[int]], num_samples: int, do_sample: bool,
                        greedy_first: bool = False) -> list[list[int]]:
        """The new token ids of each of the len(prompts)*num_samples rows (rows of one prompt are consecutive),
        each up to and including its first stop token (or max_step_tokens long); with `greedy_first`, each
        prompt's first row is decoded greedily."""
        if self.decode == "generate" or min(len(ids) for ids in prompts) < 2:
            # A one-token prompt leaves nothing to encode ahead of decoding.
            if not greedy_first:
                return self._generate_with_hf(prompts, num_samples, do_sample)
            firsts = self._generate_with_hf(prompts, 1, False)
            rest = self._generate_with_hf(prompts, num_samples - 1, do_sample) if num_samples > 1 else []
            rows = []
            for index, first in enumerate(firsts):
                rows += [first] + rest[index * (num_samples - 1):(index + 1) * (num_samples - 1)]
            return rows
        return self._generate_cached(prompts, num_samples, do_sample, greedy_first)

    def _generate_cached(self, prompts: list[list[int]], num_samples: int, do_sample: bool,
                         greedy_first: bool = False) -> list[list[int]]:
        """Decode with a KV cache shared by the samples of a prompt; rows that stopped leave the batch.

        Each prompt but its last token is encoded once (or found in the node store); its cache rows are
        copied to its `num_samples` samples, which then decode together from the prompt's last token. Rows
        that emitted a stop token are dropped from the batch once they are a quarter of it (dropping copies
        the whole cache, so doing it at every stop costs more than decoding a few finished rows).
        """
        rows = torch.arange(len(prompts), device=self.device).repeat_interleave(num_samples)
        cache, attention_mask, positions = encode_with_store(
            self.model.base_model, [ids[:-1] for ids in prompts], self.pad_token_id, self.device, self.kv_store,
            order=rows.tolist(), room=self.max_step_tokens)
        keep_spans = self.kv_store is not None and is_plain_cache(cache)
        in_place = isinstance(cache.layers[0], RoomyLayer)
        if in_place:
            # The mask covers the whole buffer; each step switches on the column of the position it writes.
            written = attention_mask.shape[1]
            attention_mask = torch.cat(
                [attention_mask, attention_mask.new_zeros((len(rows), cache.layers[0].keys.shape[2] - written))], -1)
        tokens = torch.tensor([ids[-1] for ids in prompts], device=self.device)[rows]
        batch_rows = torch.arange(len(rows), device=self.device)
        """The row (sample) each batch position holds."""
        live = torch.ones(len(rows), dtype=torch.bool, device=self.device)
        """Whether each batch position's row is still generating."""
        generated: list[list[int]] = [[] for _ in range(len(rows))]
        stop_ids = torch.tensor(self.stop_token_ids, device=self.device)
        for step in range(self.max_step_tokens):
            if in_place:
                attention_mask[:, written + step] = 1
            else:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(batch_rows), 1))], dim=-1)
            logits = self.model(input_ids=tokens[:, None], attention_mask=attention_mask,
                                position_ids=positions[:, None], **with_cache(self.model, cache)).logits[:, -1]
            tokens = self._pick(logits.float(), do_sample,
                                (batch_rows % num_samples == 0) if greedy_first and do_sample else None)
            live_positions = live.nonzero().squeeze(-1)
            for row, token in zip(batch_rows[live_positions].tolist(), tokens[live_positions].tolist()):
                generated[row].append(token)
            stopped = live & torch.isin(tokens, stop_ids)
            if self.stop_sequence:
                length = len(self.stop_sequence)
                for position in live_positions.tolist():
                    if tuple(generated[int(batch_rows[position])][-length:]) == self.stop_sequence:
                        stopped[position] = True
            if keep_spans:
                self._store_stopped(cache, prompts, rows, batch_rows, stopped, tokens, generated)
            live &= ~stopped
            if not bool(live.any()):
                break
            if int((~live).sum()) * 4 >= len(live):
                keep = live.nonzero().squeeze(-1)
                select_rows(cache, keep)
                batch_rows, live, attention_mask = batch_rows[keep], live[keep], attention_mask[keep]
                positions, tokens = positions[keep], tokens[keep]
            positions = positions + 1
        return generated

    def _store_stopped(self, cache, prompts, rows, batch_rows, stopped, tokens, generated) -> None:
        """Keep the KV of every row that just stopped at a delimiter, under the ids it was fed (its prompt and
        its step without the stop token): the context from which that step's node will be expanded."""
        width = cache.get_seq_length()  # positions written: the prompt and every token fed so far
        for position in stopped.nonzero().squeeze(-1).tolist():
            if int(tokens[position]) in self.end_token_ids:
                continue
            row = int(batch_rows[position])
            fed = prompts[int(rows[row])] + generated[row][:-1]
            self.kv_store.put(tuple(fed), row_span(cache, position, width - len(fed), width))

    def _pick(self, logits: torch.Tensor, do_sample: bool, argmax_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Argmax, or a sample at `temperature` from the `top_k` most likely tokens (0: all), per row (the rows
        where `argmax_rows` is True take the argmax anyway); tokens the model's generation config suppresses are
        never picked (its other settings are `generate`'s business)."""
        suppressed = getattr(self.model.generation_config, "suppress_tokens", None)
        if suppressed:
            logits[:, suppressed] = float("-inf")
        if not do_sample:
            return logits.argmax(-1)
        argmax = logits.argmax(-1) if argmax_rows is not None else None
        logits = logits / self.temperature
        if self.top_k > 0:
            threshold = torch.topk(logits, min(self.top_k, logits.size(-1)), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        sampled = torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)
        return sampled if argmax is None else torch.where(argmax_rows, argmax, sampled)

    def _generate_with_hf(self, prompts: list[list[int]], num_samples: int, do_sample: bool) -> list[list[int]]:
        """One transformers `generate` over left-padded `prompts` with `num_return_sequences` (every sample
        re-encodes its prompt, and rows that stopped keep running as padding until all have stopped)."""
        input_ids, attention_mask = padded(prompts, self.pad_token_id, self.device)
        sampling = (
            dict(do_sample=True, temperature=self.temperature, top_k=self.top_k, top_p=1.0)
            if do_sample
            else dict(do_sample=False)
        )
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=self.max_step_tokens,
            num_return_sequences=num_samples,
            eos_token_id=self.stop_token_ids,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=False,
            **sampling,
        )
        return output[:, input_ids.shape[1]:].tolist()

    @contextlib.contextmanager
    def _rng_scope(self):
        """With a seed, sample from a private stream (seed + call number) and leave the global torch RNG untouched."""
        if self.seed is None:
            yield
            return
        seed = self.seed + self._calls
        self._calls += 1
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
