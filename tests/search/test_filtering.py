"""Filtering verified-correct traces out of a finished tree for policy training."""

from __future__ import annotations

import pytest

from search.filtering import correct_traces
from search.tree import Tree


def ends_in_correct(steps: tuple[str, ...]) -> bool:
    return steps[-1].startswith("correct")


def traced_tree() -> Tree:
    """Correct terminals with V 0.4 (id 1), 0.9 (id 3), 0.9 (id 4); a wrong one; an unfinished one."""
    tree = Tree.new("p", "Q: ")
    tree.add_child(0, "correct 1\n", prm_score=0.4, is_terminal=True)
    a = tree.add_child(0, "A\n", prm_score=0.95)
    tree.add_child(a, "correct 2\n", prm_score=0.9, is_terminal=True)
    tree.add_child(0, "correct 3\n", prm_score=0.9, is_terminal=True)
    tree.add_child(0, "wrong\n", prm_score=1.0, is_terminal=True)
    tree.add_child(0, "correct but unfinished\n", prm_score=1.0)
    return tree


def test_correct_traces_are_ordered_by_value_then_id():
    assert correct_traces(traced_tree(), ends_in_correct) == [
        ("A\n", "correct 2\n"),
        ("correct 3\n",),
        ("correct 1\n",),
    ]


def test_correct_traces_drop_duplicate_step_tuples():
    tree = traced_tree()
    tree.add_child(0, "correct 3\n", prm_score=0.2, is_terminal=True)  # same steps as node 4
    traces = correct_traces(tree, ends_in_correct)
    assert traces.count(("correct 3\n",)) == 1
    assert len(traces) == 3


def test_max_per_tree_keeps_the_best_traces():
    tree = traced_tree()
    assert correct_traces(tree, ends_in_correct, max_per_tree=2) == [("A\n", "correct 2\n"), ("correct 3\n",)]
    assert correct_traces(tree, ends_in_correct, max_per_tree=0) == []
    with pytest.raises(ValueError):
        correct_traces(tree, ends_in_correct, max_per_tree=-1)


def test_tree_without_correct_terminal_node_gives_no_traces():
    assert correct_traces(traced_tree(), lambda steps: False) == []
    assert correct_traces(Tree.new("p", "Q: "), ends_in_correct) == []
