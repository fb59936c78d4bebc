"""Which nodes of a tree give value examples: `finished_below` and the `nodes` rule of `value_targets`."""

from __future__ import annotations

import pytest

from search.tree import Tree
from search.value_inference import finished_below, infer_process_rewards, value_targets


def ends_in_correct(steps: tuple[str, ...]) -> bool:
    return steps[-1].startswith("correct")


def mixed_tree() -> tuple[Tree, dict[str, int]]:
    """root ─ A ─ B ─ C (correct terminal)
                 └ D (unfinished leaf)
       root ─ E ─ F (wrong terminal)
       root ─ G (unfinished leaf)
       root ─ H ─ I (unfinished leaf)"""
    tree = Tree.new("p", "Q: ")
    ids = {}
    ids["A"] = tree.add_child(0, "A\n")
    ids["B"] = tree.add_child(ids["A"], "B\n")
    ids["C"] = tree.add_child(ids["B"], "correct C\n", is_terminal=True)
    ids["D"] = tree.add_child(ids["A"], "D\n")
    ids["E"] = tree.add_child(0, "E\n")
    ids["F"] = tree.add_child(ids["E"], "wrong F\n", is_terminal=True)
    ids["G"] = tree.add_child(0, "G\n")
    ids["H"] = tree.add_child(0, "H\n")
    ids["I"] = tree.add_child(ids["H"], "I\n")
    return tree, ids


def test_finished_below_marks_the_nodes_with_a_terminal_in_their_subtree():
    tree, ids = mixed_tree()
    finished = finished_below(tree)
    assert len(finished) == len(tree.nodes)
    assert finished[0] is True
    assert {name for name, node_id in ids.items() if finished[node_id]} == {"A", "B", "C", "E", "F"}


def test_a_wrong_terminal_counts_as_finished():
    tree, ids = mixed_tree()
    assert finished_below(tree)[ids["E"]] and finished_below(tree)[ids["F"]]


def test_finished_below_of_a_tree_without_terminal_nodes_is_all_false():
    tree, _ = mixed_tree()
    for node in tree.nodes:
        node.is_terminal = False
    assert finished_below(tree) == [False] * len(tree.nodes)
    assert finished_below(Tree.new("p", "Q: ")) == [False]


def test_a_terminal_root_is_finished():
    # A root whose every proposal was empty becomes terminal itself (search.mcts._expand).
    tree = Tree.new("p", "Q: ")
    tree.root.is_terminal = True
    assert finished_below(tree) == [True]


def test_finished_below_reaches_up_through_a_long_chain_and_does_not_change_the_tree():
    tree = Tree.new("p", "Q: ")
    node_id = 0
    for depth in range(1, 8):
        node_id = tree.add_child(node_id, f"s{depth}\n", is_terminal=depth == 7)
    side = tree.add_child(3, "side\n")
    before = tree.to_dict()
    assert finished_below(tree) == [True] * 8 + [False]
    assert tree.nodes[side].depth == 4
    assert tree.to_dict() == before


def test_finished_value_targets_keep_only_nodes_with_a_finished_solution_below():
    tree, ids = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    targets = value_targets(tree, rewards, "quality", nodes="finished")
    assert [steps for steps, _ in targets] == [
        ("A\n",),
        ("A\n", "B\n"),
        ("A\n", "B\n", "correct C\n"),
        ("E\n",),
        ("E\n", "wrong F\n"),
    ]
    # C is 3 steps below the root: v = 1/3, 2/3, 1 on its path; E and F are off it (distance 4 of the root):
    # max(0, 0 - 1/4) = 0.
    assert [value for _, value in targets] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.0, 0.0])


def test_all_value_targets_keep_every_node_with_a_reward():
    tree, ids = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    targets = value_targets(tree, rewards, "hard", nodes="all")
    assert [steps[-1] for steps, _ in targets] == [tree.nodes[i].step_text for i in range(1, len(tree.nodes))]
    assert dict((steps[-1], value) for steps, value in targets) == {
        "A\n": 1.0, "B\n": 1.0, "correct C\n": 1.0, "D\n": 0.0, "E\n": 0.0, "wrong F\n": 0.0, "G\n": 0.0,
        "H\n": 0.0, "I\n": 0.0}


def test_hard_finished_targets_are_the_all_targets_of_the_finished_nodes():
    tree, ids = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    finished = finished_below(tree)
    for target in ("quality", "hard"):
        every = value_targets(tree, rewards, target, nodes="all")
        kept = value_targets(tree, rewards, target, nodes="finished")
        assert kept == [item for item, node in zip(every, tree.nodes[1:]) if finished[node.node_id]]
        assert len(kept) == 5 and len(every) == 9


def test_the_default_node_rule_is_all():
    tree, _ = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert value_targets(tree, rewards) == value_targets(tree, rewards, "quality", nodes="all")
    assert value_targets(tree, rewards, "hard") == value_targets(tree, rewards, "hard", nodes="all")


def test_both_rules_agree_when_every_leaf_is_terminal():
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n")
    tree.add_child(a, "correct B\n", is_terminal=True)
    tree.add_child(a, "wrong B\n", is_terminal=True)
    tree.add_child(0, "wrong C\n", is_terminal=True)
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert value_targets(tree, rewards, nodes="finished") == value_targets(tree, rewards, nodes="all")
    assert len(value_targets(tree, rewards, nodes="finished")) == 4


def test_nodes_without_a_reward_are_left_out_under_either_rule():
    tree, ids = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    del rewards[ids["B"]], rewards[ids["G"]]
    assert ("A\n", "B\n") not in dict(value_targets(tree, rewards, nodes="finished"))
    assert len(value_targets(tree, rewards, nodes="finished")) == 4
    assert len(value_targets(tree, rewards, nodes="all")) == 7


def test_a_tree_without_a_correct_answer_gives_no_targets_under_either_rule():
    tree, _ = mixed_tree()
    rewards = infer_process_rewards(tree, lambda steps: False)
    assert value_targets(tree, rewards, nodes="finished") == []
    assert value_targets(tree, rewards, nodes="all") == []


def test_an_unknown_node_rule_is_rejected_naming_it():
    tree, _ = mixed_tree()
    rewards = infer_process_rewards(tree, ends_in_correct)
    with pytest.raises(ValueError, match=r"unknown value node rule 'visited'.*'finished', 'all'"):
        value_targets(tree, rewards, nodes="visited")
    with pytest.raises(ValueError, match="unknown value node rule"):
        value_targets(tree, {}, nodes="")


def test_a_tree_without_a_right_answer_gives_its_wrong_solutions_or_every_node_as_negatives():
    from search.value_inference import unsolved_rewards

    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n")
    wrong = tree.add_child(a, "wrong B\n", is_terminal=True)
    open_leaf = tree.add_child(0, "C\n")
    assert infer_process_rewards(tree, ends_in_correct) == {}  # the official rule: nothing from this tree
    only_terminals = unsolved_rewards(tree, terminals_only=True)
    assert set(only_terminals) == {wrong} and only_terminals[wrong].hard_estimate == -1
    assert value_targets(tree, only_terminals, "hard", "finished") == [(("A\n", "wrong B\n"), 0.0)]
    every = unsolved_rewards(tree)
    assert set(every) == {0, a, wrong, open_leaf}
    assert value_targets(tree, every, "hard", "finished") == [(("A\n",), 0.0), (("A\n", "wrong B\n"), 0.0)]
    assert [target for _, target in value_targets(tree, every, "quality", "all")] == [0.0, 0.0, 0.0]


def test_the_value_rules_are_checked_naming_the_flag():
    from rest_mcts.config import ConfigError, RunConfig, ValuesConfig
    from rest_mcts.preflight import validate

    with pytest.raises(ConfigError, match="--values.unsolved_trees 'some'"):
        validate(RunConfig(values=ValuesConfig(unsolved_trees="some")))
    with pytest.raises(ConfigError, match="--values.nodes 'leaves'"):
        validate(RunConfig(values=ValuesConfig(nodes="leaves")))
