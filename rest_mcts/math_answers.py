"""Grading of LaTeX math answers (MATH-style) by symbolic equivalence with math-verify, and grouping of answers
into equivalence classes for votes; never by string equality alone.

math-verify (`parse`, then `verify(gold, answer)`) parses LaTeX only inside a math environment, so a bare answer
such as `420`, `\\frac{1}{2}` or `x^2+1` is wrapped in `$...$` first, as its README's examples do. Its timeouts use
SIGALRM, which Python allows in the main thread only: there they are on; in any other thread they are off (a
pathological expression can then take as long as sympy needs).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache

from math_verify import parse, verify

TIMEOUT_SECONDS = 5
"""math-verify's limit on parsing one answer and on one comparison (main thread only, see the module docstring)."""

# An unescaped $, \( or \[, or a \boxed: the text already says where its math is (`\$5` is a currency sign).
_MATH_ENVIRONMENT = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")


def extract_boxed(text: str) -> str | None:
    """The contents of the last `\\boxed{...}` in `text` (braces balanced, so `\\boxed{\\frac{1}{2}}` gives
    `\\frac{1}{2}`); None when there is none or its braces never close."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    for position in range(start + len("\\boxed"), len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[start + len("\\boxed{") : position]
    return None


def _timeout() -> int | None:
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=65536)
def _parsed(answer: str) -> tuple:
    """math-verify's parse of `answer` (wrapped in `$...$` unless it already holds a math environment); empty
    when it cannot be parsed. No string fallback: an unparsable answer must never match by its text."""
    text = answer.strip()
    if not text:
        return ()
    if not _MATH_ENVIRONMENT.search(text):
        text = f"${text}$"
    return tuple(parse(text, fallback_mode="no_fallback", parsing_timeout=_timeout()))


@lru_cache(maxsize=65536)
def same_answer(gold: str, answer: str) -> bool:
    """Whether `answer` is mathematically equivalent to `gold` by math-verify (`\\frac12`, `1/2` and `0.5` are
    one answer). False when either cannot be parsed, so an unparsable gold answer never gives a free point.
    math-verify's comparison is not symmetric (it may simplify the answer towards the gold form): pass the
    reference first. Cached, so grading the same pair again costs nothing."""
    gold_parsed, answer_parsed = _parsed(gold), _parsed(answer)
    if not gold_parsed or not answer_parsed:
        return False
    return bool(verify(list(gold_parsed), list(answer_parsed), timeout_seconds=_timeout()))


def equivalent(first: str, second: str) -> bool:
    """One answer for voting: the same text, or equivalent by `same_answer` (`first` as the reference). Unlike
    `same_answer`, two identical unparsable answers are one answer here: a vote counts them together."""
    return first == second or same_answer(first, second)


def group_answers(answers: Sequence[str]) -> list[int]:
    """The equivalence class of each answer, as the position in `answers` of the class's first member (its
    representative): `["7", "7.0", "x", "7"]` gives `[0, 0, 2, 0]`.

    Each new answer is compared (`equivalent`, representative as the reference) with the representatives
    found so far, in order, and joins the first that matches; identical texts join without a comparison, so
    eight answers with two distinct texts cost one comparison.
    """
    representatives: list[int] = []
    by_text: dict[str, int] = {}
    classes = []
    for position, answer in enumerate(answers):
        if answer not in by_text:
            match = next((rep for rep in representatives if equivalent(answers[rep], answer)), None)
            if match is None:
                representatives.append(position)
                match = position
            by_text[answer] = match
        classes.append(by_text[answer])
    return classes
