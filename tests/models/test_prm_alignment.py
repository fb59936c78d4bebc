"""The PRM reads exactly the token that training labels (DESIGN.md section 5), with a character and a BPE tokenizer.

The BPE tokenizer is trained here on arithmetic solutions with no pre-tokenizer, so its merges cross line ends
("8\\n1"): tokenizing a whole solution in one go would merge a step's delimiter with the next step. Step-by-step
encoding must never do that, and the scorer must read the last token of each step in every path.
"""

import math
import random
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, trainers
from transformers import PreTrainedTokenizerFast

from lm.build import build_tiny_policy, build_tiny_prm
from lm.encoding import IGNORE_INDEX, encode_steps, prm_labels
from lm.prm_scorer import PRMScorer
from lm.sampler import StepSampler
from lm.tokenizer import DEFAULT_ALPHABET, SPECIAL_TOKENS, build_char_tokenizer
from search.types import Prefix

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_positions=256)
PROMPT = "3+4*2\n"
STEPS = ("3+8\n", "11\n", "#11\n")
OTHER_SOLUTIONS = [Prefix("9*8*7\n", ("9*56\n", "504\n")), Prefix("1+1*1\n", ("1+1\n",))]


def arithmetic_solution(rng: random.Random) -> str:
    a, b, c = (rng.randint(1, 9) for _ in range(3))
    op = rng.choice("+*")
    middle = f"{a}{op}{b * c}"
    return f"{a}{op}{b}*{c}\n{middle}\n{eval(middle)}\n"


def build_bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained locally on arithmetic solutions; merges may span newlines."""
    rng = random.Random(0)
    corpus = [arithmetic_solution(rng) for _ in range(300)]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer = trainers.BpeTrainer(
        vocab_size=150, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=list(DEFAULT_ALPHABET),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer)
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


TOKENIZERS = {"char": build_char_tokenizer, "bpe": build_bpe_tokenizer}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


@pytest.fixture(scope="module")
def prm(tokenizer):
    return build_tiny_prm(tokenizer, seed=3, **TINY)


class PositionPRM(torch.nn.Module):
    """A fake PRM whose logit at position t is t / 100, so a score tells which position was read."""

    config = SimpleNamespace(num_labels=1)

    def forward(self, input_ids, attention_mask=None):
        positions = torch.arange(input_ids.shape[1], dtype=torch.float32) / 100
        return SimpleNamespace(logits=positions.expand(input_ids.shape[0], -1)[..., None])


def position_read(score: float) -> int:
    return round(100 * math.log(score / (1 - score)))


def label_positions(tokenizer, prefix: Prefix) -> list[int]:
    encoded = encode_steps(tokenizer, prefix.prompt, prefix.steps)
    labels = prm_labels(encoded, [0.5] * len(prefix.steps))
    return [position for position, label in enumerate(labels) if label != IGNORE_INDEX]


def all_prefixes(prefix: Prefix) -> list[Prefix]:
    return [Prefix(prefix.prompt, prefix.steps[:k]) for k in range(1, len(prefix.steps) + 1)]


def test_bpe_tokenizer_merges_across_line_ends_so_the_alignment_tests_mean_something():
    tokenizer = build_bpe_tokenizer()
    merged = [token for token in tokenizer.get_vocab() if "\n" in token and not token.endswith("\n")]
    assert merged, "no merge carries characters after a newline"
    whole_text_ids = tokenizer(PROMPT + "".join(STEPS), add_special_tokens=False)["input_ids"]
    assert any(token in merged for token in tokenizer.convert_ids_to_tokens(whole_text_ids))
    assert [tokenizer.bos_token_id] + whole_text_ids != encode_steps(tokenizer, PROMPT, STEPS).input_ids


def test_step_by_step_encoding_never_merges_across_step_boundaries(tokenizer):
    full = encode_steps(tokenizer, PROMPT, STEPS)
    for k, prefix in enumerate(all_prefixes(Prefix(PROMPT, STEPS)), start=1):
        encoded = encode_steps(tokenizer, prefix.prompt, prefix.steps)
        assert full.input_ids[: len(encoded.input_ids)] == encoded.input_ids
        assert encoded.step_end_positions == full.step_end_positions[:k]
    starts = [full.prompt_length - 1] + full.step_end_positions
    for start, end, step_text in zip(starts, full.step_end_positions, STEPS):
        assert tokenizer.decode(full.input_ids[start + 1 : end + 1]) == step_text
        assert tokenizer.decode([full.input_ids[end]]).endswith("\n")  # the read token holds the delimiter


def test_scorer_reads_exactly_the_positions_that_prm_labels_mark(tokenizer):
    scorer = PRMScorer(PositionPRM(), tokenizer, batch_size=3)
    full = Prefix(PROMPT, STEPS)
    assert [position_read(score) for score in scorer.score_all_steps(full)] == label_positions(tokenizer, full)
    # Batched scoring of prefixes of different lengths (right padding) reads each prefix's last labelled token.
    prefixes = all_prefixes(full) + OTHER_SOLUTIONS + all_prefixes(OTHER_SOLUTIONS[0])
    read = [position_read(score) for score in scorer.score(prefixes)]
    assert read == [label_positions(tokenizer, prefix)[-1] for prefix in prefixes]


def test_scores_are_the_sigmoid_of_prm_logits_at_the_labelled_tokens(tokenizer, prm):
    full = Prefix(PROMPT, STEPS)
    encoded = encode_steps(tokenizer, PROMPT, STEPS)
    with torch.no_grad():
        logits = prm(torch.tensor([encoded.input_ids])).logits[0, :, 0]
    expected = torch.sigmoid(logits[label_positions(tokenizer, full)])
    torch.testing.assert_close(torch.tensor(PRMScorer(prm, tokenizer).score_all_steps(full)), expected)


def test_score_of_a_k_step_prefix_equals_step_k_of_the_full_solution(tokenizer, prm):
    scorer = PRMScorer(prm, tokenizer, batch_size=2)
    full = Prefix(PROMPT, STEPS)
    prefixes = OTHER_SOLUTIONS + all_prefixes(full)
    batched = scorer.score(prefixes)
    one_at_a_time = [scorer.score([prefix])[0] for prefix in prefixes]
    torch.testing.assert_close(torch.tensor(batched), torch.tensor(one_at_a_time), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        torch.tensor(batched[len(OTHER_SOLUTIONS) :]), torch.tensor(scorer.score_all_steps(full)), rtol=0, atol=1e-6
    )
    assert all(0.0 < score < 1.0 for score in batched)


def test_a_prefix_without_steps_cannot_be_scored(tokenizer, prm):
    with pytest.raises(ValueError, match="no step"):
        PRMScorer(prm, tokenizer).score([Prefix(PROMPT)])


def test_sampled_bpe_steps_are_cut_after_a_delimiter_merged_with_what_follows():
    tokenizer = build_bpe_tokenizer()
    policy = build_tiny_policy(tokenizer, seed=0, **TINY)
    sampler = StepSampler(policy, tokenizer, "\n", lambda text: "#" in text, max_step_tokens=8, seed=0,
                          decode="generate")
    merged_ids = {i for i in sampler.stop_token_ids if not tokenizer.decode([i]).endswith("\n")}
    assert merged_ids, "some stop tokens carry characters after the delimiter"
    generate = policy.generate
    new_tokens = []

    def recording_generate(**kwargs):
        output = generate(**kwargs)
        new_tokens.extend(output[:, kwargs["input_ids"].shape[1] :].tolist())
        return output

    policy.generate = recording_generate
    try:
        proposals = sampler.propose([Prefix(PROMPT), Prefix(PROMPT, STEPS[:1])], 32)
    finally:
        del policy.generate
    first_stops = [next((t for t in row if t in sampler.stop_token_ids), None) for row in new_tokens]
    assert merged_ids & set(first_stops), "no sample ended on a merged delimiter token"
    for step in (step for steps in proposals for step in steps):
        assert step.text.count("\n") <= 1
        assert step.text.endswith("\n") or step.is_final


def test_siblings_scored_over_one_shared_parent_encoding_match_whole_prefixes(tokenizer, prm):
    prefixes = [Prefix(PROMPT, STEPS[:1]), Prefix(PROMPT, STEPS[:2]), Prefix(PROMPT, (STEPS[0], "x + 9\n")),
                Prefix(PROMPT, STEPS[:3]), Prefix("other question", ("7\n",)), Prefix(PROMPT, STEPS[:2])]
    shared = PRMScorer(prm, tokenizer, batch_size=4)
    whole = PRMScorer(prm, tokenizer, shared_prefix=False)
    assert shared.shared_prefix and not whole.shared_prefix
    assert shared.score(prefixes) == pytest.approx(whole.score(prefixes), abs=1e-5)


def test_cached_sampling_with_a_bpe_tokenizer_gives_the_same_greedy_steps_as_generate():
    tokenizer = build_bpe_tokenizer()
    policy = build_tiny_policy(tokenizer, seed=0, **TINY)
    prefixes = [Prefix(PROMPT), Prefix(PROMPT, STEPS[:1]), Prefix(PROMPT, STEPS[:2])]
    steps = {}
    for decode in ("cached", "generate"):
        sampler = StepSampler(policy, tokenizer, "\n", lambda text: "#" in text, max_step_tokens=8, decode=decode)
        steps[decode] = sampler.greedy(prefixes)
    assert steps["cached"] == steps["generate"]


def test_scores_with_kept_node_kv_match_scores_without(tokenizer, prm):
    stored = PRMScorer(prm, tokenizer, kv_store_mb=16)
    plain = PRMScorer(prm, tokenizer, shared_prefix=False)
    for depth in range(1, len(STEPS) + 1):
        siblings = [Prefix(PROMPT, STEPS[:depth]), Prefix(PROMPT, STEPS[: depth - 1] + ("9\n",))]
        assert stored.score(siblings) == pytest.approx(plain.score(siblings), abs=1e-5)
    assert stored.kv_store.hits == len(STEPS) - 1  # every parent after the prompt was scored before
