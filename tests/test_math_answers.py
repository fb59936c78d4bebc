"""The math-verify grader of LaTeX answers: equivalent forms, \\boxed extraction, no free point for an unparsable
gold answer, answer grouping for votes and its cost, and use outside the main thread."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rest_mcts.math_answers as math_answers
from rest_mcts.math_answers import equivalent, extract_boxed, group_answers, same_answer

SHIPPED_MATH = Path(__file__).resolve().parents[1] / "rest_mcts" / "tasks" / "data" / "math" / "math_cot_100.jsonl"


@pytest.mark.parametrize("gold, answer", [
    ("\\frac12", "0.5"),
    ("0.5", "\\frac{1}{2}"),
    ("\\frac{1}{2}", "1/2"),
    ("420", "\\boxed{420}"),
    ("x^2+1", "1+x^2"),
    ("12\\frac{3}{5}", "\\frac{63}{5}"),
    ("3,250", "3250"),
    ("10{,}000", "10000"),
    ("\\$18.90", "18.90"),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
])
def test_equivalent_forms_are_the_same_answer(gold, answer):
    assert same_answer(gold, answer)


@pytest.mark.parametrize("gold, answer", [("420", "421"), ("\\frac{1}{2}", "\\frac{1}{3}"), ("x^2+1", "x^2-1"),
                                          ("7", "")])
def test_different_answers_are_not_the_same(gold, answer):
    assert not same_answer(gold, answer)


@pytest.mark.parametrize("gold", ["", "   ", "}{", "\\frac{"])
def test_an_unparsable_gold_answer_never_gives_a_free_point(gold):
    assert not same_answer(gold, gold)
    assert not same_answer(gold, "1")


def test_identical_unparsable_answers_are_one_answer_for_a_vote():
    assert equivalent("}{", "}{")
    assert not equivalent("}{", "{}")


def test_extract_boxed_takes_the_last_box_with_balanced_braces():
    assert extract_boxed("first \\boxed{1}, then \\boxed{\\frac{1}{2}} at last.") == "\\frac{1}{2}"
    matrix = "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"
    assert extract_boxed(f"so \\boxed{{{matrix}}}.") == matrix
    assert extract_boxed("no box here") is None
    assert extract_boxed("\\boxed{\\frac{1}{2}") is None


def test_extract_boxed_reads_the_answers_of_real_math_responses():
    """Every one of the 800 real responses: its last \\boxed{} is the dataset's extracted `pred`, as text or
    (for forms the dataset normalised, such as `\\dfrac`) by math-verify."""
    rows = [json.loads(line) for line in SHIPPED_MATH.read_text(encoding="utf-8").splitlines()]
    pairs = [(extract_boxed(text), pred) for row in rows for text, pred in zip(row["code"], row["pred"])]
    assert len(pairs) == 800
    assert all(boxed is not None and (boxed == pred or same_answer(pred, boxed)) for boxed, pred in pairs)


def test_group_answers_gives_each_answer_its_class_first_member():
    assert group_answers(["7", "7.0", "x", "7", "\\frac{14}{2}", "x"]) == [0, 0, 2, 0, 0, 2]
    assert group_answers([]) == []


def test_group_answers_compares_only_new_texts_with_representatives(monkeypatch):
    calls = []

    def counting_verify(gold, answer, **kwargs):
        calls.append((gold, answer))
        return real_verify(gold, answer, **kwargs)

    real_verify = math_answers.verify
    monkeypatch.setattr(math_answers, "verify", counting_verify)
    math_answers.same_answer.cache_clear()
    assert group_answers(["\\frac{3}{4}"] * 4 + ["0.75"] * 3 + ["\\frac{4}{3}"]) == [0] * 7 + [7]
    # "0.75" against the one representative, "\frac{4}{3}" against it too: two comparisons for eight answers.
    assert len(calls) == 2


def test_same_answer_works_outside_the_main_thread():
    """math-verify's timeouts use SIGALRM, which a worker thread may not set: there the grader turns them off."""
    math_answers.same_answer.cache_clear()
    math_answers._parsed.cache_clear()  # parse too must run in the worker thread
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(same_answer, "\\frac{5}{8}", "0.625").result()
        assert not pool.submit(same_answer, "\\frac{5}{8}", "0.626").result()
