"""What every step sampler does, whichever backend generates (`lm.sampler.StepSampler` on transformers,
`lm.vllm_engine.VLLMStepSampler` on a vLLM engine): the behavioural tests both must pass.

A test module subclasses `StepSamplerContract` and gives a `make_sampler` fixture: a factory taking the sampler's
keyword arguments (delimiter, is_final_step, max_step_tokens, temperature, seed, greedy_first) over `contract_policy`
with `build_char_tokenizer()`.
"""

from __future__ import annotations

import pytest
import torch

from lm.build import build_tiny_policy
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


SAMPLER_DEFAULTS = dict(delimiter="\n", is_final_step=has_answer, max_step_tokens=MAX_STEP_TOKENS, seed=0)


def contract_policy(tokenizer, num_heads: int = 2):
    """A random tiny policy (by default two heads of 32, which vLLM's CPU attention takes) with large weights, so
    that greedy choices have wide margins and differ per prefix."""
    model = build_tiny_policy(tokenizer, hidden_size=64, num_layers=2, num_heads=num_heads, intermediate_size=128,
                              seed=1)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.3)
    return model


class StepSamplerContract:
    """Backend-independent behaviour of `propose`, `greedy`, `reseed` and step parsing."""

    def test_batched_greedy_equals_one_prefix_at_a_time(self, make_sampler):
        sampler = make_sampler()
        batched = sampler.greedy(PREFIXES)
        assert batched == [sampler.greedy([prefix])[0] for prefix in PREFIXES]
        assert len({step.text for step in batched}) == len(PREFIXES)  # the prefixes really lead to different steps

    def test_every_step_ends_with_the_delimiter_or_is_final(self, make_sampler):
        proposals = make_sampler().propose(PREFIXES, 8)
        assert [len(steps) for steps in proposals] == [8] * len(PREFIXES)
        for steps in proposals:
            for step in steps:
                assert 1 <= step.num_tokens <= MAX_STEP_TOKENS
                assert step.text.count("\n") <= 1
                assert step.text.endswith("\n") or step.is_final
                assert step.is_final == (not step.text.endswith("\n") or has_answer(step.text))

    def test_is_final_step_marks_answer_steps_final(self, make_sampler):
        always = make_sampler(is_final_step=lambda text: True).propose(PREFIXES, 2)
        never = make_sampler(is_final_step=lambda text: False).propose(PREFIXES, 2)
        assert all(step.is_final for steps in always for step in steps)
        assert [[s.is_final for s in steps] for steps in never] == [
            [not s.text.endswith("\n") for s in steps] for steps in never]

    def test_a_step_cut_at_max_step_tokens_is_final(self, make_sampler):
        for steps in make_sampler(max_step_tokens=1).propose(PREFIXES, 4):
            for step in steps:
                assert step.num_tokens == 1
                assert step.is_final == (step.text != "\n")

    def test_same_seed_gives_same_samples_and_leaves_global_rng_alone(self, make_sampler):
        torch.manual_seed(5)
        expected_draw = torch.rand(1)
        torch.manual_seed(5)
        first = make_sampler(seed=11).propose(PREFIXES, 4)
        assert torch.equal(torch.rand(1), expected_draw)
        assert make_sampler(seed=11).propose(PREFIXES, 4) == first
        assert make_sampler(seed=12).propose(PREFIXES, 4) != first

    def test_empty_batch_gives_no_steps(self, make_sampler):
        assert make_sampler().propose([], 3) == []
        assert make_sampler().greedy([]) == []

    def test_reseeding_restarts_the_sampling_stream(self, make_sampler):
        sampler = make_sampler()
        first = sampler.propose(PREFIXES, 2)
        assert sampler.propose(PREFIXES, 2) != first  # the stream moves on
        sampler.reseed(0)
        assert sampler.propose(PREFIXES, 2) == first

    def test_greedy_first_puts_the_argmax_step_first_and_samples_the_rest(self, make_sampler):
        greedy = [step.text for step in make_sampler().greedy(PREFIXES)]
        sampler = make_sampler(temperature=2.0, greedy_first=True)  # vLLM's hottest
        proposals = sampler.propose(PREFIXES, 4)
        assert [steps[0].text for steps in proposals] == greedy
        assert all(len(steps) == 4 for steps in proposals)
        # At a high temperature the sampled three are not all the argmax step.
        assert any(step.text != steps[0].text for steps in proposals for step in steps[1:])
        assert [[step.text] for step in sampler.greedy(PREFIXES)] == [[s.text for s in steps] for steps in
                                                                     sampler.propose(PREFIXES, 1)]

    def test_nonpositive_temperature_or_sample_count_is_refused(self, make_sampler):
        with pytest.raises(ValueError, match="temperature"):
            make_sampler(temperature=0.0)
        with pytest.raises(ValueError, match="temperature"):
            make_sampler(temperature=-1.0)
        with pytest.raises(ValueError, match="num_samples"):
            make_sampler().propose(PREFIXES, 0)

    def test_a_delimiter_of_several_tokens_ends_the_step_where_it_is_first_written(self, make_sampler, tokenizer):
        prefix = Prefix("3+4")
        long_step = make_sampler(delimiter="\u00a7", max_step_tokens=12).greedy([prefix])[0].text
        start = next(i for i in range(2, len(long_step) - 1) if long_step.find(long_step[i:i + 2]) == i
                     and "\n" not in long_step[i:i + 2])
        delimiter = long_step[start:start + 2]
        sampler = make_sampler(delimiter=delimiter, max_step_tokens=12)
        step = sampler.greedy([prefix])[0]
        assert step.text == long_step[:start + 2]
        assert step.num_tokens == start + 2
        assert sampler.stop_sequence == tuple(tokenizer(delimiter, add_special_tokens=False)["input_ids"])
