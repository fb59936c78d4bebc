"""Verifier scorers: GenRM's renormalised p(yes), GenRM-CoT's mean over checks, token counts, the classifier."""

from __future__ import annotations

import pytest
import torch

from lm.build import build_tiny_policy, build_tiny_prm
from lm.prm_scorer import PRMScorer
from lm.tokenizer import build_char_tokenizer
from lm.verifier_format import VerifierFormat, encode_verification
from lm.verifier_scorer import ClassifierVerifier, GenerativeVerifier
from search.types import Prefix

PREFIXES = [Prefix("3?4=5\n", ("abc\n",)), Prefix("1?2=3\n", ("x\n", "yz\n")), Prefix("7\n", ("9\n",))]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def policy(tokenizer):
    return build_tiny_policy(tokenizer, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, seed=3)


def manual_p_yes(model, tokenizer, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    probs = torch.softmax(logits.float(), -1)
    yes = probs[tokenizer.convert_tokens_to_ids("y")]
    no = probs[tokenizer.convert_tokens_to_ids("n")]
    return float(yes / (yes + no))


def test_direct_genrm_reads_p_yes_renormalised_after_the_question(tokenizer, policy):
    verifier = GenerativeVerifier(policy, tokenizer, batch_size=2)
    verdicts = verifier.verify(PREFIXES)
    for prefix, score in zip(PREFIXES, verdicts.scores):
        ids = encode_verification(tokenizer, prefix.prompt, prefix.steps, VerifierFormat()).input_ids
        assert score == pytest.approx(manual_p_yes(policy, tokenizer, ids), abs=1e-5)
    assert verdicts.tokens_generated == [1, 1, 1]
    assert verdicts.tokens_read == [len(encode_verification(tokenizer, p.prompt, p.steps, VerifierFormat()).input_ids)
                                    for p in PREFIXES]


def test_genrm_scores_do_not_depend_on_batching(tokenizer, policy):
    one_by_one = [GenerativeVerifier(policy, tokenizer, batch_size=1).verify([p]).scores[0] for p in PREFIXES]
    together = GenerativeVerifier(policy, tokenizer, batch_size=8).verify(PREFIXES).scores
    assert together == pytest.approx(one_by_one, abs=1e-5)


def test_genrm_cot_scores_are_the_mean_p_yes_over_its_checks(tokenizer, policy):
    verifier = GenerativeVerifier(policy, tokenizer, rationales=3, max_rationale_tokens=12, seed=1)
    checks = verifier.checks(PREFIXES, 3)
    assert [len(c) for c in checks] == [3, 3, 3]
    for samples in checks:
        assert all(0.0 < p < 1.0 and 1 <= tokens <= 13 for p, tokens in samples)
    again = GenerativeVerifier(policy, tokenizer, rationales=3, max_rationale_tokens=12, seed=1).verify(PREFIXES)
    assert again.scores == pytest.approx([sum(p for p, _ in c) / 3 for c in checks], abs=1e-5)
    assert again.tokens_generated == [sum(t for _, t in c) for c in checks]


def test_a_check_is_cut_at_the_question_and_read_as_training_encodes_it(tokenizer, policy):
    verifier = GenerativeVerifier(policy, tokenizer, rationales=1, max_rationale_tokens=12)

    class Written:
        def propose(self, prefixes, count):
            from search.types import ProposedStep

            return [[ProposedStep("1 ok\ncorrect?", 13, True)] * count for _ in prefixes]

    verifier.writer = Written()
    [[(p_yes, tokens)]] = verifier.checks(PREFIXES[:1], 1)
    ids = encode_verification(tokenizer, PREFIXES[0].prompt, PREFIXES[0].steps, VerifierFormat(), "1 ok\n").input_ids
    assert p_yes == pytest.approx(manual_p_yes(policy, tokenizer, ids), abs=1e-5)
    assert tokens == 14


def test_a_verifier_needs_verdicts_its_tokenizer_can_tell_apart(tokenizer, policy):
    with pytest.raises(ValueError, match="verifier.question"):
        GenerativeVerifier(policy, tokenizer, VerifierFormat(question="Correct?"))
    with pytest.raises(ValueError, match="first tokens of their own"):
        GenerativeVerifier(policy, tokenizer, VerifierFormat(yes="no", no="nope"))
    with pytest.raises(ValueError, match="checks need"):
        GenerativeVerifier(policy, tokenizer).checks(PREFIXES, 2)


def test_classifier_verifier_aggregates_the_prm_step_scores(tokenizer):
    prm = build_tiny_prm(tokenizer, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, seed=5)
    scorer = PRMScorer(prm, tokenizer)
    last = ClassifierVerifier(scorer, "last").verify(PREFIXES)
    lowest = ClassifierVerifier(scorer, "min").verify(PREFIXES)
    for prefix, value, low in zip(PREFIXES, last.scores, lowest.scores):
        steps = scorer.score_all_steps(prefix)
        assert value == pytest.approx(steps[-1], abs=1e-5)
        assert low == pytest.approx(min(steps), abs=1e-5)
    assert last.tokens_generated == [0, 0, 0]


def test_likelihood_verifier_scores_the_geometric_mean_probability_of_the_solution_and_eos(tokenizer, policy):
    from lm.encoding import encode_steps
    from lm.verifier_scorer import LikelihoodVerifier

    verdicts = LikelihoodVerifier(policy, tokenizer, batch_size=2).verify(PREFIXES)
    for prefix, score in zip(PREFIXES, verdicts.scores):
        encoded = encode_steps(tokenizer, prefix.prompt, prefix.steps, add_eos=True)
        with torch.no_grad():
            log_probs = torch.log_softmax(policy(input_ids=torch.tensor([encoded.input_ids])).logits[0].float(), -1)
        targets = encoded.input_ids[encoded.prompt_length:]
        positions = range(encoded.prompt_length - 1, len(encoded.input_ids) - 1)
        mean = sum(float(log_probs[p, t]) for p, t in zip(positions, targets)) / len(targets)
        assert score == pytest.approx(float(torch.exp(torch.tensor(mean))), rel=1e-4)
    assert verdicts.tokens_generated == [0, 0, 0]
