"""Final answers of real model output (`rest_mcts.answers`): strict formats first, in the task's priority order,
then the last number; exact numeric grading; the Game of 24 checker; and the math-verify grader's time limit
outside the main thread."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import pytest

import rest_mcts.math_answers as math_answers
from lm.data import Problem
from rest_mcts.answers import (
    MATH_ORDER,
    NUMERIC_ORDER,
    GoldAnswerError,
    game24_value,
    gold_number,
    last_number,
    numeric_answer,
    same_number,
    strict_answer,
    to_number,
)
from rest_mcts.tasks import get_task

# --- answer extraction on realistic output ------------------------------------------------------------------

FALLBACK = "flexible fallback: no strict format"
STRICT_WINS = "the strict answer wins over a later number"

NUMBERS_OF_OUTPUTS = [
    # GSM8K's own format
    pytest.param("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18 dollars.\n#### 18", "18", id="hashes"),
    pytest.param("#### 1,234", "1234", id="hashes-thousands-comma"),
    pytest.param("She paid $1,000,000.\n#### 1,000,000", "1000000", id="hashes-millions"),
    pytest.param("#### $18", "18", id="hashes-currency"),
    pytest.param("#### 18.00", "18", id="hashes-trailing-zeros"),
    pytest.param("#### 18.", "18", id="hashes-closing-period"),
    pytest.param("#### -5", "-5", id="hashes-negative"),
    pytest.param("#### -$5", "-5", id="hashes-negative-currency"),
    pytest.param("#### 18 dollars", "18", id="hashes-unit"),
    pytest.param("#### 3/4", "3/4", id="hashes-fraction"),
    pytest.param("#### 18\n\nI hope this helps! Let me know if you have 2 more questions.", "18",
                 id="hashes-then-chatter"),
    pytest.param("#### 5\n\nNote: 3 apples were left over.", "5", id=STRICT_WINS + ": note after ####"),
    # "The (final) answer is X"
    pytest.param("So she makes 9 * 2 = 18 dollars.\nThe answer is $18.", "18", id="answer-is-currency"),
    pytest.param("The answer is: 42", "42", id="answer-is-colon"),
    pytest.param("the final answer is 42.", "42", id="final-answer-is-lower-case"),
    pytest.param("The answer is **18**.", "18", id="answer-is-bold"),
    pytest.param("The answer is \\(18\\).", "18", id="answer-is-inline-math"),
    pytest.param("The answer is -5.", "-5", id="answer-is-negative"),
    pytest.param("The answer is 25%.", "25", id="answer-is-percent"),
    pytest.param("The answer is 18\\%", "18", id="answer-is-latex-percent"),
    pytest.param("The answer is .5", "1/2", id="answer-is-leading-point"),
    pytest.param("The answer is 1.5 hours", "3/2", id="answer-is-decimal-unit"),
    pytest.param("The answer is $1,234.50.", "2469/2", id="answer-is-currency-cents"),
    pytest.param("The answer is 10{,}000", "10000", id="answer-is-latex-thousands"),
    pytest.param("Thus the answer is 72 - 12 = 60.", "72", id="answer-is-a-calculation: its first number"),
    pytest.param("The answer is 5.\n\nCheck: 2 + 3 = 5, so 4 apples remain.", "5",
                 id=STRICT_WINS + ": check after the answer"),
    pytest.param("The answer is eighteen. She had 3 apples and 5 pears.", "3",
                 id="strict answer not a number: its first number"),
    pytest.param("#### 18\nI am confident the answer is correct.", "18",
                 id="later 'answer is' without a number: #### comes first"),
    pytest.param("The answer is 18 dollars per day, or 126 per week.", "18", id="answer-is-with-a-second-number"),
    pytest.param("#### 18 (9 eggs * $2)", "18", id="note after the #### number"),
    pytest.param("#### 2 3/4", "2", id="mixed number: spaces never join digits, its first number"),
    pytest.param("#### 18 20", "18", id="two numbers: never 1820, the first"),
    pytest.param("#### - 5", "-5", id="hashes-negative-with-a-space"),
    # \boxed{}
    pytest.param("The final answer is $\\boxed{18}$", "18", id="final-answer-boxed"),
    pytest.param("The answer is \\boxed{18}.", "18", id="answer-is-boxed"),
    pytest.param("\\boxed{\\frac{3}{4}}", "3/4", id="boxed-fraction"),
    pytest.param("\\boxed{\\dfrac{1}{2}}", "1/2", id="boxed-dfrac"),
    pytest.param("\\boxed{-\\frac{1}{2}}", "-1/2", id="boxed-negative-fraction"),
    pytest.param("\\boxed{18\\text{ dollars}}", "18", id="boxed-text-unit"),
    pytest.param("\\boxed{\\$18}", "18", id="boxed-escaped-currency"),
    pytest.param("\\boxed{18} dollars and 3 cents", "18", id=STRICT_WINS + ": text after the box"),
    pytest.param("\\boxed{\\frac34}", "3/4", id="boxed-frac-without-braces"),
    pytest.param("\\boxed{\\dfrac{1}{9}}", "1/9", id="boxed-dfrac-ninth"),
    pytest.param("\\boxed{3\\frac{1}{2}}", "7/2", id="boxed-mixed-fraction"),
    pytest.param("\\boxed{\\frac{-1}{2}}", "-1/2", id="boxed-fraction-negative-numerator"),
    pytest.param("\\boxed{5\\text{ cm}}", "5", id="boxed-text-unit-cm"),
    # numeric priority order: `####`, then `\boxed{}`, then "the answer is"; each at its last occurrence
    pytest.param("#### 5\nThe answer is 7", "5", id="hashes-before-a-later-answer-is"),
    pytest.param("The answer is 7\n#### 5", "5", id="hashes-after-answer-is"),
    pytest.param("#### 18\n#### 19", "19", id="last-of-two-hashes"),
    pytest.param("\\boxed{5}\n#### 7", "7", id="hashes-before-an-earlier-box"),
    pytest.param("The answer is \\(7\\).\nSo \\boxed{5}", "5", id="box-before-answer-is"),
    pytest.param("\\boxed{5}.\nNote: the answer is rounded from 4.6", "5", id="box-before-a-note-with-answer-is"),
    pytest.param("#### 18\n\nNote: the answer is rounded from 17.6", "18", id="'answer is' in a note after ####"),
    pytest.param("###### 12\nThe answer is 5", "5", id="###### is not a #### marker"),
    pytest.param("Step 1 ######\nSo 2 * 9 = 18", "18", id=FALLBACK + ": ###### is not a #### marker"),
    # no strict format: the last number
    pytest.param("**Answer:** 18", "18", id=FALLBACK + ": bold Answer label"),
    pytest.param("Answer: 42", "42", id=FALLBACK + ": Answer label"),
    pytest.param("She makes 18 dollars.", "18", id=FALLBACK + ": number with unit"),
    pytest.param("First 3, then 7, finally 18", "18", id=FALLBACK + ": several numbers"),
    pytest.param("The total is 2 * 9 = 18.\nSo she earns $18 every day.", "18", id=FALLBACK + ": currency"),
    pytest.param("We get 3 - 5 = -2", "-2", id=FALLBACK + ": negative"),
    pytest.param("so x = 0.5", "1/2", id=FALLBACK + ": decimal"),
    pytest.param("I cannot solve this problem.", None, id="no number at all"),
    pytest.param("the answer is x", None, id="strict answer and text without a number"),
    pytest.param("The answer is 3. Wait, no: the answer is 4.", "4", id="two 'answer is' on one line"),
    pytest.param("#### 3 #### 4", "4", id="two #### markers on one line"),
]


@pytest.mark.parametrize("text, number", NUMBERS_OF_OUTPUTS)
def test_numeric_answer_reads_the_number_real_output_states(text, number):
    expected = None if number is None else Fraction(number)
    assert to_number(numeric_answer(text)) == expected


@pytest.mark.parametrize("text, number", NUMBERS_OF_OUTPUTS)
def test_gsm8k_grades_real_output_by_that_number(text, number):
    """The task's grading agrees with the table: right for the stated number, wrong for a neighbour, and a
    solution with no number is wrong, never an error."""
    task = get_task("gsm8k")
    gold = "18" if number is None else number
    right = number is not None
    assert task.is_correct(Problem("p", "q", gold), [text]) == right
    assert not task.is_correct(Problem("p", "q", str(Fraction(gold) + 1)), [text])


def test_numeric_grading_compares_exact_numbers():
    assert same_number("\\frac{3}{4}", "0.75")
    assert same_number("$18.00", "18")
    assert same_number("1,234", "1234")
    assert not same_number("1,8", "18")  # not a thousands comma
    assert not same_number("0.333", "1/3")
    assert not same_number(None, "18")
    assert not same_number("eighteen", "18")


def test_the_extracted_number_is_written_canonically_so_votes_count_equal_numbers_together():
    task = get_task("gsm8k")
    answers = {task.extract_answer([text]) for text in ("#### 18", "#### 18.00", "The answer is $18.", "18 dollars")}
    assert answers == {"18"}


def test_strict_answer_strips_the_markup_around_a_final_answer():
    assert strict_answer("The final answer is $\\boxed{18}$.") == "18"
    assert strict_answer("The answer is **$18$**.") == "18"
    assert strict_answer("#### 18\n") == "18"
    assert strict_answer("no format here, 18") is None
    assert strict_answer("#### \n") is None  # an empty #### states nothing


@pytest.mark.parametrize("text, numeric, math", [
    pytest.param("\\boxed{5}\n#### 7", "7", "5", id="box then ####"),
    pytest.param("#### 7\n\\boxed{5}", "7", "5", id="#### then box"),
    pytest.param("The answer is 4\n#### 9", "9", "4", id="answer-is then ####"),
    pytest.param("#### 18\n\nNote: the answer is rounded from 17.6", "18", "rounded from 17.6",
                 id="#### then a note with 'answer is'"),
    pytest.param("\\boxed{3}\nThe answer is 4", "3", "3", id="box then answer-is"),
    pytest.param("The answer is 4\n\\boxed{3}", "3", "3", id="answer-is then box"),
    pytest.param("The answer is \\boxed{2}.\nThen \\boxed{3}", "3", "3", id="last of two boxes"),
    pytest.param("The answer is 3.\nNo: the answer is 4.", "4", "4", id="last of two answer-is lines"),
    pytest.param("#### 4\n#### 5", "5", "5", id="last of two ####"),
    pytest.param("$\\boxed{36}$\n\nrandom ###### tokens ##", "36", "36", id="box then a stray ######"),
    pytest.param("###### 12\nThe answer is 5", "5", "5", id="###### is not a marker"),
    pytest.param("####### 12", None, None, id="####### is not a marker"),
    pytest.param("##### 12", None, None, id="##### is not a marker"),
    pytest.param("Step ######\n#### 12", "12", "12", id="a real #### after a ######"),
    pytest.param("no format, 12", None, None, id="no strict format"),
    pytest.param("Answer: 42", "42", "42", id="answer colon"),
    pytest.param("**Final Answer:** $x^2$", "x^2", "x^2", id="bold answer colon"),
    pytest.param("Answer: 3\nThe answer is 4", "4", "4", id="answer-is before answer colon"),
])
def test_strict_answer_tries_the_formats_in_the_task_order_the_first_present_wins(text, numeric, math):
    """Numeric tasks: `####`, box, "answer is", "Answer:"; math tasks: box, "answer is", `####`, "Answer:". The
    first format present
    wins, at its last occurrence; only a run of exactly four `#` is GSM8K's marker."""
    assert NUMERIC_ORDER == ("hashes", "boxed", "answer_is", "answer_colon")
    assert MATH_ORDER == ("boxed", "answer_is", "hashes", "answer_colon")
    assert strict_answer(text, NUMERIC_ORDER) == strict_answer(text) == numeric
    assert strict_answer(text, MATH_ORDER) == math


def test_strict_answer_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="unknown answer format 'latex'"):
        strict_answer("#### 5", ("latex",))


def test_last_number_is_the_flexible_fallback():
    assert last_number("3 apples, 4 pears and $1,250.50 in total.") == "$1,250.50"
    assert last_number("no digits") is None


@pytest.mark.parametrize("text, value", [
    pytest.param("\\frac34", Fraction(3, 4), id="frac without braces"),
    pytest.param("\\dfrac{1}{9}", Fraction(1, 9), id="dfrac"),
    pytest.param("\\tfrac{2}{3}", Fraction(2, 3), id="tfrac"),
    pytest.param("3\\frac{1}{2}", Fraction(7, 2), id="mixed fraction"),
    pytest.param("-3\\frac{1}{2}", Fraction(-7, 2), id="negative mixed fraction"),
    pytest.param("\\frac{-1}{2}", Fraction(-1, 2), id="negative numerator"),
    pytest.param("-\\frac{1}{2}", Fraction(-1, 2), id="minus before frac"),
    pytest.param("\\frac{10}{2}", 5, id="frac of a whole number"),
    pytest.param("5\\text{ cm}", 5, id="text unit"),
    pytest.param("5 cm", 5, id="unit word"),
    pytest.param("- 5", -5, id="minus and a space"),
    pytest.param("10{,}000", 10000, id="latex thousands"),
    pytest.param("2 3/4", None, id="a space never joins a whole and a fraction"),
    pytest.param("18 20", None, id="a space never joins two numbers"),
    pytest.param("1 000", None, id="a space is no thousands separator"),
    pytest.param("\\frac{1}{0}", None, id="zero denominator"),
    pytest.param("\\frac", None, id="frac without digits"),
])
def test_to_number_reads_latex_fractions_and_never_joins_digits_across_spaces(text, value):
    assert to_number(text) == value


def test_to_number_reads_numbers_only():
    assert to_number("5 dollars") == 5
    assert to_number("5 dollars and 3 cents") is None
    assert to_number("1/0") is None
    assert to_number("\\frac{1}{0}") is None
    assert to_number("12,34") is None
    assert to_number("") is None
    assert to_number(None) is None


@pytest.mark.parametrize("text, value", [("Natalia sold 48/2 = 24 clips.\n#### 72", 72), ("#### 1,000,000", 1000000),
                                         ("42", 42), ("-3.5", Fraction(-7, 2)), ("\\frac{3}{4}", Fraction(3, 4))])
def test_gold_numbers_are_read_after_hashes_or_whole(text, value):
    assert gold_number(text, "file.jsonl:1") == value


@pytest.mark.parametrize("text", ["abc", "", "#### ", "#### twelve", "5 or 6", "1e3"])
def test_an_unparsable_gold_number_raises_naming_where(text):
    with pytest.raises(GoldAnswerError, match="file.jsonl:7"):
        gold_number(text, "file.jsonl:7")


# --- Game of 24 checker -------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression, numbers", [
    ("4 * 6 * 1 * 1", [1, 1, 4, 6]),
    ("(1 + 1 + 4) * 6 - 12", [1, 1, 4, 6, 12]),
    ("8 / (3 - 8 / 3)", [3, 3, 8, 8]),  # exact fractions: 8 / (1/3)
    ("8 / (3 - 8 / 3) = 24", [3, 3, 8, 8]),
    ("(10 - 4) x (13 - 9)", [4, 9, 10, 13]),
    ("(10 − 4) × (13 − 9)", [4, 9, 10, 13]),
    ("12 ÷ (1 - 1 / 2)", [1, 1, 2, 12]),
])
def test_game24_accepts_each_number_once_equal_to_24(expression, numbers):
    assert game24_value(expression, numbers)


@pytest.mark.parametrize("expression", [
    pytest.param("4 * 6 * 1 * 1 * 1", id="reuses a number"),
    pytest.param("4 * 6 * 1", id="omits a number"),
    pytest.param("4 * 6", id="omits two numbers"),
    pytest.param("4 * 6 * 1 * 1 + 0", id="adds a number"),
    pytest.param("(6 - 1) * 4 + 4", id="reuses one and omits another"),
    pytest.param("4 * 6 / (1 - 1)", id="divides by zero"),
    pytest.param("-(1 - 1 - 4 * 6)", id="unary minus"),
    pytest.param("- 1 + 1 + 4 * 6", id="leading unary minus"),
    pytest.param("4 * 6 * 1 ** 1", id="power"),
    pytest.param("4 * 6 + 1 % 1", id="modulo"),
    pytest.param("4 * 6 // (1 * 1)", id="floor division"),
    pytest.param("4 * 6 | 1 - 1", id="bitwise or"),
    pytest.param("(1 + 1) * (6 * 4)", id="equals 48"),
    pytest.param("4.0 * 6 * 1 * 1", id="a float"),
    pytest.param("abs(4 * 6 * 1 * 1)", id="a call"),
    pytest.param("4 * 6 = 24 * 1 * 1", id="an equation"),
    pytest.param("4 * 6 * 1 * 1 = 25", id="claims a result other than 24"),
    pytest.param("4 * 6 * 1 * 1 = 24 = 25", id="claims two results"),
    pytest.param("(1 + 1) * (6 * 4) = 24", id="claims 24 but equals 48"),
    pytest.param("", id="empty"),
    pytest.param("4 * 6 * (1 * 1", id="unbalanced"),
])
def test_game24_rejects_anything_but_the_four_numbers_once_equal_to_24(expression):
    assert not game24_value(expression, [1, 1, 4, 6])


# --- the math-verify grader outside the main thread ---------------------------------------------------------

PAIRS = [("\\frac{1}{2}", "0.5", True), ("420", "\\boxed{420}", True), ("x^2+1", "1+x^2", True),
         ("10{,}000", "10000", True), ("\\frac{5}{8}", "0.626", False), ("\\frac{", "\\frac{", False)]


def test_same_answer_in_a_worker_thread_agrees_with_the_main_thread():
    in_main = []
    for gold, answer, _ in PAIRS:
        math_answers.same_answer.cache_clear()
        in_main.append(math_answers.same_answer(gold, answer))
    math_answers.same_answer.cache_clear()
    with ThreadPoolExecutor(max_workers=2) as pool:
        in_threads = list(pool.map(lambda pair: math_answers.same_answer(pair[0], pair[1]), PAIRS))
    assert in_main == in_threads == [right for _, _, right in PAIRS]


def test_grading_time_limits_are_on_only_in_the_main_thread():
    """math-verify's limits use SIGALRM, which only the main thread may set."""
    assert math_answers._timeout() == math_answers.TIMEOUT_SECONDS
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(math_answers._timeout).result() is None


def sleep_instead_of_grading(gold: str, answer: str) -> bool:
    """A comparison that hangs; module level, so that the spawned helper process can import it by name."""
    time.sleep(600)
    return True


HANG_WAIT_SECONDS = 4
"""The helper's wait in the hang test: the helper is already up by then (its start, about 0.3 s here, runs under
the real HELPER_WAIT_SECONDS), so this covers one comparison in a running helper (milliseconds) and the import of
this module there to unpickle `sleep_instead_of_grading` (under 0.5 s), with a wide margin."""


def test_a_comparison_that_hangs_in_the_helper_process_is_killed_and_counted_wrong(monkeypatch):
    """A grading call off the main thread waits HELPER_WAIT_SECONDS (a module global, read at call time) for its
    helper process, then kills it and counts the pair wrong; a fresh helper grades the next pair. The helper is
    started (and restarted) under the real wait, and the hanging comparison runs under HANG_WAIT_SECONDS: the test
    takes about HANG_WAIT_SECONDS + 1 s. The hanging comparison crosses into the spawned process by reference to
    this module's function."""
    assert math_answers.HELPER_WAIT_SECONDS == 3 * math_answers.TIMEOUT_SECONDS + 15
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(math_answers._in_helper_process, "\\frac{1}{2}", "0.5").result()  # the helper is up
        helpers = list(math_answers._helper._processes.values())
        monkeypatch.setattr(math_answers, "HELPER_WAIT_SECONDS", HANG_WAIT_SECONDS)
        # the shorter wait is ample for a real comparison in the running helper: a timeout below is the hang's
        assert pool.submit(math_answers._in_helper_process, "x^2+1", "1+x^2").result()
        assert list(math_answers._helper._processes.values()) == helpers
        monkeypatch.setattr(math_answers, "_same_answer", sleep_instead_of_grading)
        started = time.monotonic()
        assert not pool.submit(math_answers._in_helper_process, "1", "1").result()
        assert HANG_WAIT_SECONDS <= time.monotonic() - started < HANG_WAIT_SECONDS + 10
        assert math_answers._helper is None
        deadline = time.monotonic() + 10
        while any(process.is_alive() for process in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(process.is_alive() for process in helpers)
        monkeypatch.undo()
        # a fresh helper (started under the real wait) grades the next pair
        assert pool.submit(math_answers._in_helper_process, "\\frac{1}{2}", "0.5").result()
        assert not set(math_answers._helper._processes.values()) & set(helpers)
