"""Property-based tests (hypothesis): answer extraction and the data parsers never fail on arbitrary input other
than as documented, and value inference keeps its invariants on arbitrary trees."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rest_mcts.answers import game24_value, numeric_answer, strict_answer, to_number
from rest_mcts.math_answers import extract_boxed
from rest_mcts.tasks.data_task import DataError, read_json_lines
from search.tree import Tree
from search.value_inference import infer_process_rewards, value_targets

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROSE = st.text(st.sampled_from("abcdefghij .,;:\n()"), max_size=40)
"""Text with no digit, `#`, box or answer marker in it."""


# -- answer extraction ---------------------------------------------------------------------------------------


@SETTINGS
@given(st.text(max_size=300))
def test_extraction_never_raises_on_any_text(text):
    numeric_answer(text)
    strict_answer(text)
    to_number(text)
    extract_boxed(text)
    game24_value(text, [1, 2, 3, 4])


STEP_TEXT = st.one_of(st.text(st.sampled_from("0123456789?=;+-*\n "), max_size=24), st.text(max_size=24))
"""Arbitrary step text, most of it made of the characters of modtarget's steps (so that near-steps occur)."""
QUESTION = st.builds(lambda digits, target: "?".join(digits) + f"={target}\n",
                     st.lists(st.sampled_from("123456789"), min_size=2, max_size=4), st.sampled_from("0123456789"))
"""A modtarget prompt: its question and the delimiter."""


@SETTINGS
@given(st.one_of(st.text(st.sampled_from("0123456789?=\n"), max_size=20), QUESTION), st.lists(STEP_TEXT, max_size=5))
def test_the_modtarget_reader_and_step_check_never_raise_and_the_check_passes_only_what_the_reader_reads(
        prompt, steps):
    from rest_mcts.tasks.modtarget import ModTargetTask

    task = ModTargetTask()
    assert task.check_step(prompt, steps) in (True, False)
    answer = task.extract_answer(steps)
    assert answer is None or set(answer) <= set("+-*")
    # A finished derivation whose every step passes the check is always read.
    if steps and task.is_final_step(steps[-1]) and all(task.check_step(prompt, steps[:end])
                                                       for end in range(1, len(steps) + 1)):
        assert answer is not None and len(answer) == len(steps)


@SETTINGS
@given(PROSE, st.integers(-10**12, 10**12), PROSE, st.booleans())
def test_a_stated_integer_is_read_back_in_any_surrounding_prose(before, number, after, commas):
    written = f"{number:,}" if commas else str(number)
    for text in (f"{before}\n#### {written}\n{after}", f"{before} The answer is {written}.",
                 f"{before} \\boxed{{{written}}} {after}"):
        assert to_number(numeric_answer(text)) == number, text


@SETTINGS
@given(st.fractions(min_value=-10**6, max_value=10**6, max_denominator=1000))
def test_every_fraction_reads_back_as_itself(value):
    assert to_number(str(value)) == value
    if value.denominator == 1:
        assert to_number(f"{value}.00") == value


@SETTINGS
@given(st.recursive(st.text(st.sampled_from("ab+1\\ "), max_size=5),
                    lambda inner: st.builds(lambda a, b: f"{{{a}}}{b}", inner, inner), max_leaves=8))
def test_the_last_box_gives_back_its_balanced_contents(contents):
    assert extract_boxed(f"so \\boxed{{{contents}}}.") == contents


# -- data parsers --------------------------------------------------------------------------------------------


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=6)


@SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=40), JSON_VALUES.map(lambda v: json.dumps(v).encode())), max_size=6))
def test_a_data_file_is_read_or_refused_naming_it_never_anything_else(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("data") / "data.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    try:
        rows = read_json_lines(path, ["question", "answer"])
    except DataError as error:
        assert str(path) in str(error)
    else:
        assert rows and all({"question", "answer"} <= set(record) for _, record in rows)


# -- value inference -----------------------------------------------------------------------------------------


@st.composite
def trees(draw):
    """A tree shape (parent of each node, terminal flags, which terminals are correct) with unique step texts."""
    size = draw(st.integers(1, 25))
    parents = [draw(st.integers(0, index)) for index in range(size)]  # node index+1's parent, in creation order
    has_children = {parent for parent in parents}
    terminal = [(index + 1) not in has_children and draw(st.booleans()) for index in range(size)]
    correct = [terminal[index] and draw(st.booleans()) for index in range(size)]
    return parents, terminal, correct, draw(st.randoms(use_true_random=False))


def build(parents, terminal, shuffle: random.Random | None = None) -> Tree:
    """The tree of the shape, children created in creation order or, with `shuffle`, breadth first in a shuffled
    sibling order (other node ids, the same tree)."""
    children: dict[int, list[int]] = {}
    for index, parent in enumerate(parents):
        children.setdefault(parent, []).append(index + 1)
    tree, ids, queue = Tree.new("p", "prompt"), {0: 0}, [0]
    while queue:
        node = queue.pop(0)
        kids = list(children.get(node, []))
        if shuffle is not None:
            shuffle.shuffle(kids)
        for kid in kids:
            ids[kid] = tree.add_child(ids[node], f"step{kid}\n", is_terminal=terminal[kid - 1])
            queue.append(kid)
    return tree


@SETTINGS
@given(trees())
def test_values_stay_in_0_1_rise_along_correct_paths_and_ignore_node_order(shape):
    parents, terminal, correct, rng = shape
    right = {f"step{index + 1}\n" for index in range(len(parents)) if correct[index]}

    def is_correct(steps):
        return steps[-1] in right

    tree = build(parents, terminal)
    rewards = infer_process_rewards(tree, is_correct)
    if not right:
        assert rewards == {}
        return
    assert all(0.0 <= reward.quality_value <= 1.0 for reward in rewards.values())
    for node_id in tree.terminal_nodes():
        if is_correct(tree.steps_of(node_id)):
            path = [rewards[n].quality_value for n in tree.path_to(node_id)]
            assert path == sorted(path) and path[-1] == pytest.approx(1.0)
    shuffled = build(parents, terminal, shuffle=rng)
    again = infer_process_rewards(shuffled, is_correct)
    for target in ("quality", "hard"):
        assert dict(value_targets(tree, rewards, target)) == pytest.approx(
            dict(value_targets(shuffled, again, target)))
