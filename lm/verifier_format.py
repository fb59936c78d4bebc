"""How a generative verifier reads a solution: the texts around it, their token ids, and the yes/no tokens.

GenRM (Zhang et al., 2025) asks a causal LM "is the answer correct?" after the solution and scores it by
p(yes) renormalised over the yes and no tokens; GenRM-CoT first writes its own check of the solution
("let's verify step by step") and asks after it. Training (`trainers/verifier.py`) and scoring
(`lm/verifier_scorer.py`) both encode through this module, segment by segment like
`encoding.encode_steps`, so they read the same tokens with any tokenizer.

Layout, one segment per text: [BOS] prompt, steps..., (check_cue, rationale,) question, verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lm.encoding import IGNORE_INDEX, encode_step, encode_steps


@dataclass(frozen=True)
class VerifierFormat:
    """The texts a generative verifier reads and writes. The defaults fit the character tokenizer of the
    embedded tasks; for a chat or base LM use e.g. question " Is the answer correct (Yes/No)?" and verdicts
    " Yes" / " No" (GenRM's wording)."""

    check_cue: str = "check\n"
    """Written after the solution before a verification rationale (GenRM-CoT's "Let's verify step by step.")."""
    question: str = "correct?"
    """Asked after the solution (or after the rationale); the verdict's first token follows it."""
    yes: str = "yes"
    """The verdict of a correct solution, as trained."""
    no: str = "no"
    """The verdict of an incorrect solution, as trained."""


@dataclass(frozen=True)
class VerificationEncoding:
    """Token ids a verifier reads, up to and including the question; the verdict's first token comes next."""

    input_ids: list[int]
    solution_end: int
    """Index just past the solution's last token: what follows (cue, rationale, question) is verifier text."""


def _variants(word: str) -> list[str]:
    """The verdict as trained and with and without one leading space (BPE vocabularies hold both forms)."""
    bare = word.strip()
    return list(dict.fromkeys([word, bare, " " + bare]))


def _first_tokens(tokenizer, words: Sequence[str]) -> set[int]:
    firsts = set()
    for word in words:
        ids = encode_step(tokenizer, word)
        if ids:
            firsts.add(ids[0])
    return firsts


def verdict_token_ids(tokenizer, verifier_format: VerifierFormat) -> tuple[list[int], list[int]]:
    """The first tokens of the yes and of the no verdict, each in every leading-space variant that starts
    with a token of its own: a first token both verdicts share (a lone space in a character vocabulary) tells
    nothing and is left out, as is the unknown token. Raises ValueError when either side is left empty."""
    yes = _first_tokens(tokenizer, _variants(verifier_format.yes))
    no = _first_tokens(tokenizer, _variants(verifier_format.no))
    shared = yes & no
    unknown = {tokenizer.unk_token_id} if tokenizer.unk_token_id is not None else set()
    yes, no = sorted(yes - shared - unknown), sorted(no - shared - unknown)
    if not yes or not no:
        raise ValueError(f"verdicts {verifier_format.yes!r} and {verifier_format.no!r} need first tokens of their own "
                         "in this tokenizer; set verifier.yes and verifier.no to words it can tell apart")
    for name, word, ids in (("yes", verifier_format.yes, yes), ("no", verifier_format.no, no)):
        if encode_step(tokenizer, word)[0] not in ids:
            raise ValueError(f"verifier.{name} {word!r}: its first token is one both verdicts share, so training would "
                             "teach that token where the score is read; move the leading space into verifier.question")
    return yes, no


def check_encodable(tokenizer, verifier_format: VerifierFormat) -> None:
    """Raise ValueError naming the field whose text the tokenizer turns into its unknown token."""
    if tokenizer.unk_token_id is None:
        return
    for name in ("check_cue", "question", "yes", "no"):
        text = getattr(verifier_format, name)
        if tokenizer.unk_token_id in encode_step(tokenizer, text):
            raise ValueError(f"verifier.{name} {text!r}: holds characters this tokenizer does not know")
    verdict_token_ids(tokenizer, verifier_format)


def encode_verification(tokenizer, prompt: str, steps: Sequence[str], verifier_format: VerifierFormat,
                        rationale: str | None = None) -> VerificationEncoding:
    """[BOS] prompt steps (check_cue rationale) question, segment by segment; `rationale` None: the direct form."""
    input_ids = list(encode_steps(tokenizer, prompt, steps).input_ids)
    solution_end = len(input_ids)
    if rationale is not None:
        input_ids += encode_step(tokenizer, verifier_format.check_cue)
        if rationale:
            input_ids += encode_step(tokenizer, rationale)
    input_ids += encode_step(tokenizer, verifier_format.question)
    return VerificationEncoding(input_ids, solution_end)


def verification_training_row(tokenizer, prompt: str, steps: Sequence[str], correct: bool,
                              verifier_format: VerifierFormat, rationale: str | None = None
                              ) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one verification example for next-token training: the verdict is learned, and in
    the CoT form also the rationale and the question after it (the verifier writes those itself when scoring);
    the prompt, the solution and the check cue are masked."""
    encoded = encode_verification(tokenizer, prompt, steps, verifier_format, rationale)
    verdict = encode_step(tokenizer, verifier_format.yes if correct else verifier_format.no)
    input_ids = encoded.input_ids + verdict
    if rationale is None:
        learned_from = len(encoded.input_ids)  # the verdict only
    else:
        learned_from = encoded.solution_end + len(encode_step(tokenizer, verifier_format.check_cue))
    labels = [IGNORE_INDEX] * learned_from + input_ids[learned_from:]
    return input_ids, labels
