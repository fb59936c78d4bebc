"""Grading of LaTeX math answers (MATH-style) by symbolic equivalence with math-verify, and grouping of answers
into equivalence classes for votes; never by string equality alone.

math-verify (`parse`, then `verify(gold, answer)`) parses LaTeX only inside a math environment, so a bare answer
such as `420`, `\\frac{1}{2}` or `x^2+1` is wrapped in `$...$` first, as its README's examples do. Its timeouts use
SIGALRM, which Python allows in the main thread only: there they are on; in any other thread (a Ray actor's, a
thread pool's) a comparison runs in a helper process instead (math-verify's limits apply there), killed when it
has not answered after HELPER_WAIT_SECONDS (the limits of a parse and a comparison and the helper's start-up), so
grading never hangs.
An answer whose parsing or comparison runs out of time counts as not equivalent.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import multiprocessing
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

from math_verify import parse, verify

TIMEOUT_SECONDS = 5
"""The limit on parsing one answer and on one comparison (see the module docstring)."""

HELPER_WAIT_SECONDS = 3 * TIMEOUT_SECONDS + 15
"""How long a grading call waits for the helper process: two parses and one comparison, each limited to
TIMEOUT_SECONDS, and the start of a fresh helper (importing math-verify and sympy)."""

logger = logging.getLogger("rest_mcts")

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
    one answer). False when either cannot be parsed, so an unparsable gold answer never gives a free point, and
    when the check runs past TIMEOUT_SECONDS. math-verify's comparison is not symmetric (it may simplify the
    answer towards the gold form): pass the reference first. Cached, so grading the same pair again costs
    nothing."""
    if threading.current_thread() is threading.main_thread():
        return _same_answer(gold, answer)
    return _in_helper_process(gold, answer)


_helper: concurrent.futures.ProcessPoolExecutor | None = None
_helper_lock = threading.Lock()


def _in_helper_process(gold: str, answer: str) -> bool:
    """`_same_answer` in a helper process (where math-verify's own limits apply), killed and replaced when it has
    not answered within HELPER_WAIT_SECONDS."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        future = _helper.submit(_same_answer, gold, answer)
        try:
            return future.result(timeout=HELPER_WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            logger.warning("grading %r against %r ran out of time; counted as not equivalent", answer[:80], gold[:80])
            _stop_helper(kill=True)
            return False


def _stop_helper(kill: bool = False) -> None:
    """Shut the helper process down (killed first with `kill`); the next grading call starts a fresh one. Also
    run at interpreter exit, so no half-torn-down pool reports errors then."""
    global _helper
    if _helper is None:
        return
    if kill:
        for process in list((getattr(_helper, "_processes", None) or {}).values()):
            process.kill()
    _helper.shutdown(wait=False, cancel_futures=True)
    _helper = None


atexit.register(_stop_helper)


def _same_answer(gold: str, answer: str) -> bool:
    gold_parsed, answer_parsed = _parsed(gold), _parsed(answer)
    if not gold_parsed or not answer_parsed:
        return False
    return bool(verify(list(gold_parsed), list(answer_parsed), timeout_seconds=_timeout()))


def parses(answer: str) -> bool:
    """Whether math-verify parses `answer` (a gold answer that does not can never be matched)."""
    return bool(_parsed(answer))


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
