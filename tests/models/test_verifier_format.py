"""A generative verifier reads its verdict where training taught it (DESIGN.md section 5), with the character
tokenizer and with byte-level BPE tokenizers, one of which merges across word and segment boundaries.

`verdict_token_ids` must find a verdict's first token in its bare and leading-space forms and never a token
both verdicts start with; `verification_training_row` must label exactly the verdict (direct) or the rationale,
question and verdict (CoT); and the ids `encode_verification` gives the scorer must be a prefix of the training
row, so the position after them is the verdict's first token in training too.
"""

from __future__ import annotations

import random
import re

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lm.encoding import IGNORE_INDEX, encode_step, encode_steps
from lm.tokenizer import SPECIAL_TOKENS, build_char_tokenizer
from lm.verifier_format import (
    VerifierFormat,
    check_encodable,
    encode_verification,
    verdict_token_ids,
    verification_training_row,
)

PROMPT = "what is 12+34?\n"
STEPS = ("12+34=46\n", "answer 46\n")
RATIONALE = "12+34 is 46, the same as the answer.\n"

GENRM_FORMAT = VerifierFormat(check_cue="Let's verify step by step.\n", question=" Is the answer correct (Yes/No)?",
                              yes=" Yes", no=" No")
"""GenRM's wording, verdicts with a leading space: how a byte-level BPE vocabulary spells a following word."""
MERGING_FORMAT = VerifierFormat(check_cue="Let's verify step by step.\n", question=" Is the answer correct (Yes/No)? ",
                                yes="Yes", no="No")
"""The space before the verdict ends the question: a BPE without pre-tokenization starts " Yes" with a lone space."""


def training_corpus(rng: random.Random) -> list[str]:
    """A few hundred verification texts holding "Yes", " Yes", "No", " No", "yes", " yes", "correct?", sums."""
    lines = []
    for _ in range(400):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        right = a + b
        shown = rng.choice([right, right + rng.randint(1, 9)])
        verdict = "Yes" if shown == right else "No"
        lines.append(rng.choice([
            f"what is {a}+{b}?\n{a}+{b}={shown}\nanswer {shown}\nIs the answer correct (Yes/No)? {verdict}",
            f"what is {a}+{b}?\nanswer {shown}\nLet's verify step by step.\n{a}+{b} is {right}.\ncorrect? {verdict}",
            f"{verdict}, the sum is {right}. {rng.choice(['yes', 'no'])} or {rng.choice(['Yes', 'No'])}",
            f"correct? {verdict.lower()} {rng.choice(['Yes', 'No', 'yes', 'no'])}",
        ]))
    return lines


def byte_level_bpe(use_regex: bool) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here. With `use_regex` it splits words first (GPT-2's pre-tokenizer), so " Yes"
    becomes one token "ĠYes"; without, merges span spaces, newlines and punctuation ("ĠcorrectĠ(Yes/No)?Ġ")."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(training_corpus(random.Random(0)), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


TOKENIZERS = {
    "char": (build_char_tokenizer, VerifierFormat()),
    "bpe": (lambda: byte_level_bpe(use_regex=True), GENRM_FORMAT),
    "bpe_merging": (lambda: byte_level_bpe(use_regex=False), MERGING_FORMAT),
}


@pytest.fixture(scope="module")
def bpe():
    return byte_level_bpe(use_regex=True)


@pytest.fixture(scope="module")
def merging_bpe():
    return byte_level_bpe(use_regex=False)


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer_and_format(request):
    build, verifier_format = TOKENIZERS[request.param]
    return build(), verifier_format


def tokens(tokenizer, ids) -> list[str]:
    return tokenizer.convert_ids_to_tokens(list(ids))


def labelled_ids(labels) -> list[int]:
    return [label for label in labels if label != IGNORE_INDEX]


# ---- verdict tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("yes, no", [(" Yes", " No"), ("Yes", "No"), ("yes", "no")])
def test_bpe_verdict_ids_hold_the_bare_and_the_leading_space_forms_as_distinct_first_tokens(bpe, yes, no):
    yes_ids, no_ids = verdict_token_ids(bpe, VerifierFormat(yes=yes, no=no))
    bare_yes, bare_no = yes.strip(), no.strip()
    assert sorted(tokens(bpe, yes_ids)) == sorted([bare_yes, "Ġ" + bare_yes])
    assert sorted(tokens(bpe, no_ids)) == sorted([bare_no, "Ġ" + bare_no])
    assert not set(yes_ids) & set(no_ids)


def test_bpe_verdict_ids_never_hold_a_first_token_both_verdicts_share(merging_bpe):
    # Without pre-tokenization " Yes" and " No" both start with a lone "Ġ": that token tells nothing.
    space = merging_bpe.convert_tokens_to_ids("Ġ")
    assert encode_step(merging_bpe, " Yes")[0] == encode_step(merging_bpe, " No")[0] == space
    yes_ids, no_ids = verdict_token_ids(merging_bpe, VerifierFormat(yes="Yes", no="No"))
    assert tokens(merging_bpe, yes_ids) == ["Yes"] and tokens(merging_bpe, no_ids) == ["No"]


def test_char_tokenizer_verdict_ids_drop_the_shared_space():
    tokenizer = build_char_tokenizer()
    yes_ids, no_ids = verdict_token_ids(tokenizer, VerifierFormat(yes="yes", no="no"))
    assert tokens(tokenizer, yes_ids) == ["y"] and tokens(tokenizer, no_ids) == ["n"]


def test_verdicts_that_start_alike_are_an_error():
    with pytest.raises(ValueError, match="verifier.yes and verifier.no"):
        verdict_token_ids(build_char_tokenizer(), VerifierFormat(yes="yes", no="yep"))


# ---- encodable texts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, text", [("check_cue", "Check:\n"), ("question", "Correct?"), ("yes", "Yes"),
                                         ("no", "nO")])
def test_check_encodable_names_the_field_with_an_unknown_character(field, text):
    tokenizer = build_char_tokenizer()  # lower case only
    check_encodable(tokenizer, VerifierFormat())
    with pytest.raises(ValueError, match=re.escape(f"verifier.{field} {text!r}")):
        check_encodable(tokenizer, VerifierFormat(**{field: text}))


def test_a_byte_level_bpe_encodes_any_text(bpe):
    check_encodable(bpe, VerifierFormat(question=" Stimmt die Lösung? ", yes="Ja", no="Nein"))


# ---- training rows and the scorer's encoding -----------------------------------------------------------------


@pytest.mark.parametrize("correct", [True, False])
def test_direct_training_row_labels_exactly_the_verdict(tokenizer_and_format, correct):
    tokenizer, verifier_format = tokenizer_and_format
    input_ids, labels = verification_training_row(tokenizer, PROMPT, STEPS, correct, verifier_format)
    verdict = encode_step(tokenizer, verifier_format.yes if correct else verifier_format.no)
    learned = [position for position, label in enumerate(labels) if label != IGNORE_INDEX]
    assert learned == list(range(len(input_ids) - len(verdict), len(input_ids)))
    assert labelled_ids(labels) == verdict == input_ids[-len(verdict):]


@pytest.mark.parametrize("correct", [True, False])
def test_cot_training_row_labels_the_rationale_the_question_and_the_verdict(tokenizer_and_format, correct):
    tokenizer, verifier_format = tokenizer_and_format
    input_ids, labels = verification_training_row(tokenizer, PROMPT, STEPS, correct, verifier_format, RATIONALE)
    solution = encode_steps(tokenizer, PROMPT, STEPS).input_ids
    cue = encode_step(tokenizer, verifier_format.check_cue)
    learned_text = [encode_step(tokenizer, text) for text in
                    (RATIONALE, verifier_format.question, verifier_format.yes if correct else verifier_format.no)]
    learned = sum(learned_text, [])
    assert input_ids == solution + cue + learned
    assert labels == [IGNORE_INDEX] * (len(solution) + len(cue)) + learned
    # an empty rationale: the question and the verdict are still the verifier's own text
    _, labels = verification_training_row(tokenizer, PROMPT, STEPS, correct, verifier_format, "")
    assert labelled_ids(labels) == learned_text[1] + learned_text[2]


@pytest.mark.parametrize("rationale", [None, RATIONALE], ids=["direct", "cot"])
@pytest.mark.parametrize("correct", [True, False])
def test_the_scorers_ids_are_a_prefix_of_the_training_row_and_the_next_label_is_a_verdict_token(
    tokenizer_and_format, rationale, correct
):
    tokenizer, verifier_format = tokenizer_and_format
    input_ids, labels = verification_training_row(tokenizer, PROMPT, STEPS, correct, verifier_format, rationale)
    encoded = encode_verification(tokenizer, PROMPT, STEPS, verifier_format, rationale)
    read_at = len(encoded.input_ids)
    assert input_ids[:read_at] == encoded.input_ids
    assert encoded.input_ids[: encoded.solution_end] == encode_steps(tokenizer, PROMPT, STEPS).input_ids
    yes_ids, no_ids = verdict_token_ids(tokenizer, verifier_format)
    # The scorer reads p(yes) against p(no) at the position after the question; training labels that very token.
    assert labels[read_at] == input_ids[read_at] and labels[read_at] in (yes_ids if correct else no_ids)


def test_bpe_merges_across_segment_boundaries_do_not_move_what_the_scorer_reads(merging_bpe):
    verifier_format = MERGING_FORMAT
    for rationale in (None, RATIONALE):
        input_ids, labels = verification_training_row(merging_bpe, PROMPT, STEPS, True, verifier_format, rationale)
        text = PROMPT + "".join(STEPS) + (verifier_format.check_cue + rationale if rationale else "")
        text += verifier_format.question + verifier_format.yes
        # Encoded in one go, this tokenizer merges across the segments: the test would catch a whole-text encoder.
        whole = merging_bpe(text, add_special_tokens=False)["input_ids"]
        assert merging_bpe.decode(input_ids[1:]) == merging_bpe.decode(whole) == text
        assert whole != input_ids[1:]
        encoded = encode_verification(merging_bpe, PROMPT, STEPS, verifier_format, rationale)
        assert input_ids[: len(encoded.input_ids)] == encoded.input_ids
        assert tokens(merging_bpe, [labels[len(encoded.input_ids)]]) == ["Yes"]


@pytest.mark.parametrize("build", [build_char_tokenizer, lambda: byte_level_bpe(use_regex=False)],
                         ids=["char", "bpe_merging"])
def test_a_verdict_whose_trained_first_token_is_shared_is_rejected_or_still_read(build):
    tokenizer = build()
    verifier_format = VerifierFormat(question=" correct?", yes=" yes", no=" no")
    try:
        check_encodable(tokenizer, verifier_format)
    except ValueError:
        return  # rejected up front: fine
    input_ids, _ = verification_training_row(tokenizer, PROMPT, STEPS, True, verifier_format)
    read_at = len(encode_verification(tokenizer, PROMPT, STEPS, verifier_format).input_ids)
    assert input_ids[read_at] in verdict_token_ids(tokenizer, verifier_format)[0]
