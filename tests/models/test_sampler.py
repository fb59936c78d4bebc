"""StepSampler: batched, left-padded decoding (our KV-cache loop, or transformers' generate); exact step
boundaries and token counts."""

import pytest
import torch

from lm.build import build_tiny_policy
from lm.sampler import StepSampler
from lm.tokenizer import build_char_tokenizer
from search.types import Prefix

MAX_STEP_TOKENS = 16
PREFIXES = [
    Prefix("3+4"),
    Prefix("a much longer prompt than the others", ("1+2\n", "5\n")),
    Prefix("x", ("7\n",)),
    Prefix("q"),
    Prefix("zz 9 -1 =", ("4\n", "3\n", "2\n")),
]


def has_answer(step_text: str) -> bool:
    return "#" in step_text


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def policy(tokenizer):
    """A random tiny policy with large weights, so that greedy choices have wide margins and differ per prefix."""
    model = build_tiny_policy(tokenizer, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, seed=1)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.3)
    return model


def make_sampler(policy, tokenizer, **overrides):
    kwargs = dict(delimiter="\n", is_final_step=has_answer, max_step_tokens=MAX_STEP_TOKENS, seed=0)
    kwargs.update(overrides)
    return StepSampler(policy, tokenizer, **kwargs)


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


def test_batched_left_padded_greedy_equals_one_prefix_at_a_time(policy, tokenizer):
    sampler = make_sampler(policy, tokenizer)
    batched = sampler.greedy(PREFIXES)
    one_at_a_time = [sampler.greedy([prefix])[0] for prefix in PREFIXES]
    assert batched == one_at_a_time
    assert len({step.text for step in batched}) == len(PREFIXES)  # the prefixes really lead to different steps


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


def test_every_step_ends_with_the_delimiter_or_is_final(policy, tokenizer):
    for steps in make_sampler(policy, tokenizer).propose(PREFIXES, 8):
        for step in steps:
            assert 1 <= step.num_tokens <= MAX_STEP_TOKENS
            assert step.text.count("\n") <= 1
            assert step.text.endswith("\n") or step.is_final
            assert step.is_final == (not step.text.endswith("\n") or has_answer(step.text))


def test_is_final_step_marks_answer_steps_final(policy, tokenizer):
    always = make_sampler(policy, tokenizer, is_final_step=lambda text: True).propose(PREFIXES, 2)
    never = make_sampler(policy, tokenizer, is_final_step=lambda text: False).propose(PREFIXES, 2)
    assert all(step.is_final for steps in always for step in steps)
    assert [[s.is_final for s in steps] for steps in never] == [
        [not s.text.endswith("\n") for s in steps] for steps in never]


def test_a_step_cut_at_max_step_tokens_is_final(policy, tokenizer):
    for steps in make_sampler(policy, tokenizer, max_step_tokens=1).propose(PREFIXES, 4):
        for step in steps:
            assert step.num_tokens == 1
            assert step.is_final == (step.text != "\n")


def test_same_seed_gives_same_samples_and_leaves_global_rng_alone(policy, tokenizer):
    torch.manual_seed(5)
    expected_draw = torch.rand(1)
    torch.manual_seed(5)
    first = make_sampler(policy, tokenizer, seed=11).propose(PREFIXES, 4)
    assert torch.equal(torch.rand(1), expected_draw)
    assert make_sampler(policy, tokenizer, seed=11).propose(PREFIXES, 4) == first
    assert make_sampler(policy, tokenizer, seed=12).propose(PREFIXES, 4) != first


def test_empty_batch_gives_no_steps(policy, tokenizer):
    assert make_sampler(policy, tokenizer).propose([], 3) == []


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


@pytest.mark.parametrize("decode", ["cached", "generate"])
def test_greedy_first_puts_the_argmax_step_first_and_samples_the_rest(policy, tokenizer, decode):
    greedy = [step.text for step in make_sampler(policy, tokenizer, decode=decode).greedy(PREFIXES)]
    sampler = make_sampler(policy, tokenizer, decode=decode, temperature=5.0, greedy_first=True)
    proposals = sampler.propose(PREFIXES, 4)
    assert [steps[0].text for steps in proposals] == greedy
    assert all(len(steps) == 4 for steps in proposals)
    # At a high temperature the sampled three are not all the argmax step.
    assert any(step.text != steps[0].text for steps in proposals for step in steps[1:])
    assert [[step.text] for step in sampler.greedy(PREFIXES)] == [[s.text for s in steps] for steps in
                                                                 sampler.propose(PREFIXES, 1)]


def test_unknown_decode_mode_is_rejected(policy, tokenizer):
    with pytest.raises(ValueError, match="decode must be"):
        make_sampler(policy, tokenizer, decode="beam")


def test_reseeding_restarts_the_sampling_stream(policy, tokenizer):
    sampler = make_sampler(policy, tokenizer)
    first = sampler.propose(PREFIXES, 2)
    sampler.propose(PREFIXES, 2)
    sampler.reseed(0)
    assert sampler.propose(PREFIXES, 2) == first


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


@pytest.mark.parametrize("decode", ["cached", "generate"])
def test_a_delimiter_of_several_tokens_ends_the_step_where_it_is_first_written(policy, tokenizer, decode):
    prefix = Prefix("3+4")
    long_step = make_sampler(policy, tokenizer, delimiter="\u00a7", max_step_tokens=12).greedy([prefix])[0].text
    start = next(i for i in range(2, len(long_step) - 1) if long_step.find(long_step[i:i + 2]) == i
                 and "\n" not in long_step[i:i + 2])
    delimiter = long_step[start:start + 2]
    sampler = make_sampler(policy, tokenizer, delimiter=delimiter, max_step_tokens=12, decode=decode)
    step = sampler.greedy([prefix])[0]
    assert step.text == long_step[:start + 2]
    assert step.num_tokens == start + 2
    assert sampler.stop_sequence == tuple(tokenizer(delimiter, add_special_tokens=False)["input_ids"])
