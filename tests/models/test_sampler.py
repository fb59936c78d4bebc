"""StepSampler: batched, left-padded decoding (our KV-cache loop, or transformers' generate); exact step
boundaries and token counts."""

import pytest
import torch

from lm.sampler import StepSampler
from lm.tokenizer import build_char_tokenizer
from tests.models.sampler_contract import (
    MAX_STEP_TOKENS,
    PREFIXES,
    SAMPLER_DEFAULTS,
    StepSamplerContract,
    contract_policy,
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def policy(tokenizer):
    """The contract's policy with four heads of 16 (vLLM cannot serve them; the transformers backend can)."""
    return contract_policy(tokenizer, num_heads=4)


def make_sampler(policy, tokenizer, **overrides):
    return StepSampler(policy, tokenizer, **{**SAMPLER_DEFAULTS, **overrides})


class TestStepSampler(StepSamplerContract):
    """The behaviour every backend shares, with either decode loop."""

    @pytest.fixture(scope="class")
    def two_head_policy(self, tokenizer):
        return contract_policy(tokenizer)

    @pytest.fixture(params=["cached", "generate"])
    def make_sampler(self, request, two_head_policy, tokenizer):
        return lambda **overrides: make_sampler(two_head_policy, tokenizer, **{"decode": request.param, **overrides})


class GenerateSpy:
    """Wraps `model.generate` to record each call's batch size and the rows it returned."""

    def __init__(self, model):
        self.model = model
        self.original = model.generate
        self.calls = []

    def __enter__(self):
        def generate(**kwargs):
            output = self.original(**kwargs)
            self.calls.append(dict(kwargs, output=output))
            return output

        self.model.generate = generate
        return self

    def __exit__(self, *exc):
        del self.model.generate


def test_greedy_split_into_several_generate_calls_equals_one_call(policy, tokenizer):
    whole = make_sampler(policy, tokenizer).greedy(PREFIXES)
    with GenerateSpy(policy) as spy:
        split = make_sampler(policy, tokenizer, max_batch_sequences=2, decode="generate").greedy(PREFIXES)
    assert split == whole
    assert [call["input_ids"].shape[0] for call in spy.calls] == [2, 2, 1]


def test_propose_makes_one_generate_call_with_num_return_sequences(policy, tokenizer):
    with GenerateSpy(policy) as spy:
        proposals = make_sampler(policy, tokenizer, decode="generate").propose(PREFIXES, 3)
    assert [len(steps) for steps in proposals] == [3] * len(PREFIXES)
    assert len(spy.calls) == 1
    call = spy.calls[0]
    assert call["num_return_sequences"] == 3 and call["do_sample"]
    assert call["input_ids"].shape[0] == len(PREFIXES)
    assert call["output"].shape[0] == 3 * len(PREFIXES)
    assert set(call["eos_token_id"]) == {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("\n")}


def test_left_padding_has_a_matching_attention_mask(policy, tokenizer):
    with GenerateSpy(policy) as spy:
        make_sampler(policy, tokenizer, decode="generate").greedy(PREFIXES[:2])
    input_ids, attention_mask = spy.calls[0]["input_ids"], spy.calls[0]["attention_mask"]
    short_length = len(PREFIXES[0].prompt) + 1  # BOS + one token per character
    assert attention_mask[0].tolist() == [0] * (input_ids.shape[1] - short_length) + [1] * short_length
    assert attention_mask[1].all()
    assert (input_ids[attention_mask == 0] == tokenizer.pad_token_id).all()


def test_samples_are_split_when_num_samples_exceeds_the_batch_limit(policy, tokenizer):
    with GenerateSpy(policy) as spy:
        proposals = make_sampler(policy, tokenizer, max_batch_sequences=4, decode="generate").propose(PREFIXES[:2], 6)
    assert [len(steps) for steps in proposals] == [6, 6]
    assert all(call["output"].shape[0] <= 4 for call in spy.calls)
    assert sorted(call["num_return_sequences"] for call in spy.calls) == [2, 2, 4, 4]


def test_token_counts_are_the_generated_tokens_of_each_step(policy, tokenizer):
    # With special tokens other than EOS suppressed, each character is one generated token.
    policy.generation_config.suppress_tokens = [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id]
    try:
        proposals = make_sampler(policy, tokenizer).propose(PREFIXES, 8)
    finally:
        policy.generation_config.suppress_tokens = None
    endings = set()
    for step in (step for steps in proposals for step in steps):
        if step.text.endswith("\n"):
            endings.add("delimiter")
            assert step.num_tokens == len(step.text)
        elif len(step.text) == MAX_STEP_TOKENS:
            endings.add("max_step_tokens")
            assert step.num_tokens == MAX_STEP_TOKENS
        else:
            endings.add("eos")
            assert step.num_tokens == len(step.text) + 1  # the EOS is counted, not kept
    assert endings == {"delimiter", "max_step_tokens", "eos"}  # all three ways of ending a step occurred


def test_samples_stay_with_their_prefix_in_order(policy, tokenizer):
    # top_k=1 sampling is greedy, so every sample of a prefix must be that prefix's greedy step.
    greedy = make_sampler(policy, tokenizer).greedy(PREFIXES)
    for max_batch_sequences in (256, 4):
        sampler = make_sampler(policy, tokenizer, top_k=1, max_batch_sequences=max_batch_sequences)
        assert sampler.propose(PREFIXES, 3) == [[step] * 3 for step in greedy]


@pytest.mark.parametrize("max_batch_sequences", [256, 2])
def test_cached_decoding_gives_the_same_greedy_steps_as_generate(policy, tokenizer, max_batch_sequences):
    cached = make_sampler(policy, tokenizer, max_batch_sequences=max_batch_sequences).greedy(PREFIXES)
    generated = make_sampler(policy, tokenizer, decode="generate").greedy(PREFIXES)
    assert cached == generated


class ForwardSpy:
    """Records the batch size of every forward call of a model."""

    def __init__(self, model):
        self.model, self.sizes = model, []
        self.handle = None

    def __enter__(self):
        self.handle = self.model.register_forward_pre_hook(
            lambda module, args, kwargs: self.sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_cached_decoding_drops_stopped_rows_and_encodes_each_prompt_once(policy, tokenizer):
    sampler = make_sampler(policy, tokenizer)
    with ForwardSpy(policy) as spy:
        proposals = sampler.propose(PREFIXES, 4)
    # The prompts are encoded by the base model, not the LM: every forward of the LM is one decode step.
    lengths = [step.num_tokens for steps in proposals for step in steps]
    assert spy.sizes[0] == 4 * len(PREFIXES) and len(spy.sizes) == max(lengths)
    assert spy.sizes == sorted(spy.sizes, reverse=True) and spy.sizes[-1] < spy.sizes[0]
    for step_index, batch_size in enumerate(spy.sizes):
        still_generating = sum(length > step_index for length in lengths)
        # Finished rows ride along only while they are under a quarter of the batch.
        assert still_generating <= batch_size and 4 * (batch_size - still_generating) < batch_size


def test_unknown_decode_mode_is_rejected(policy, tokenizer):
    with pytest.raises(ValueError, match="decode must be"):
        make_sampler(policy, tokenizer, decode="beam")


def test_kept_node_kv_gives_the_same_greedy_chains_and_is_reused(policy, tokenizer):
    stored = make_sampler(policy, tokenizer, kv_store_mb=64)
    plain = make_sampler(policy, tokenizer)
    prefixes = list(PREFIXES)
    for _ in range(3):
        steps = stored.greedy(prefixes)
        assert steps == plain.greedy(prefixes)
        prefixes = [p.extend(s.text) if s.text.endswith("\n") else p for p, s in zip(prefixes, steps)]
    # Every extended prefix was found in the store (the first call encoded the five prompts).
    extended = sum(1 for p, q in zip(prefixes, PREFIXES) if p != q)
    assert extended > 0 and stored.kv_store.hits >= extended


def test_prefix_store_drops_the_least_recently_used_beyond_its_bytes():
    from lm.kv_cache import PrefixStore

    def layers(tokens):  # one layer, 1 head, head_dim 4, float32: 32 bytes per token
        return [(torch.zeros(1, tokens, 4), torch.zeros(1, tokens, 4))]

    store = PrefixStore(max_bytes=32 * 10)
    store.put((1, 2, 3), layers(3))
    store.put((4, 5, 6), layers(3))
    assert store.get((1, 2, 3)) is not None  # now the most recently used
    store.put((7, 8, 9, 10), layers(4))  # 10 tokens: still fits
    store.put((11,), layers(1))  # 11 tokens: (4, 5, 6) goes
    assert store.get((4, 5, 6)) is None and store.get((1, 2, 3)) is not None and store.bytes == 32 * 8
    store.put((0,) * 20, layers(20))  # larger than the store: not kept
    assert store.get((0,) * 20) is None
