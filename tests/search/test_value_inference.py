"""Process rewards inferred from a tree and the oracle: the ReST-MCTS* worked example and its rules, by hand."""

from __future__ import annotations

import math

import pytest

from search.tree import Tree
from search.value_inference import NodeReward, grade_terminal_nodes, infer_process_rewards, value_targets


def ends_in_correct(steps: tuple[str, ...]) -> bool:
    return steps[-1].startswith("correct")


def worked_example() -> tuple[Tree, dict[str, int]]:
    """root → A → B → C (correct), and a wrong terminal leaf B' under A."""
    tree = Tree.new("p", "Q: ")
    ids = {}
    ids["A"] = tree.add_child(0, "A\n")
    ids["B"] = tree.add_child(ids["A"], "B\n")
    ids["C"] = tree.add_child(ids["B"], "correct C\n", is_terminal=True)
    ids["B'"] = tree.add_child(ids["A"], "wrong B'\n", is_terminal=True)
    return tree, ids


def test_worked_example_gives_one_third_two_thirds_one_and_one_ninth():
    tree, ids = worked_example()
    rewards = infer_process_rewards(tree, ends_in_correct)
    quality = {name: rewards[node_id].quality_value for name, node_id in ids.items()}
    assert quality["A"] == pytest.approx(1 / 3, abs=1e-12)
    assert quality["B"] == pytest.approx(2 / 3, abs=1e-12)
    assert quality["C"] == pytest.approx(1.0, abs=1e-12)
    assert quality["B'"] == pytest.approx(1 / 9, abs=1e-12)  # max(0, 1/3 − (2/3)/3)
    assert rewards[0].quality_value == 0.0


def test_worked_example_distances_and_hard_estimates():
    tree, ids = worked_example()
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert rewards[0] == NodeReward(reasoning_distance=4, hard_estimate=1, quality_value=0.0)
    names = ("A", "B", "C", "B'")
    assert [(rewards[ids[n]].reasoning_distance, rewards[ids[n]].hard_estimate) for n in names] == [
        (3, 1),
        (2, 1),
        (1, 1),
        (3, -1),  # off the correct path: the distance of its parent A
    ]


def test_node_off_correct_path_takes_nearest_ancestor_distance_and_is_clipped_at_zero():
    tree, ids = worked_example()
    below_wrong = tree.add_child(ids["B'"], "more\n")  # not terminal: B' is made a plain node
    tree.nodes[ids["B'"]].is_terminal = False
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert rewards[ids["B'"]].reasoning_distance == 3
    assert rewards[below_wrong].reasoning_distance == 3
    assert rewards[below_wrong].hard_estimate == -1
    # max(0, 1/9 − (8/9)/3) = max(0, −5/27) = 0
    assert rewards[below_wrong].quality_value == 0.0


def test_ancestor_takes_the_shortest_distance_among_its_correct_children():
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n")
    short = tree.add_child(a, "correct B\n", is_terminal=True)
    c = tree.add_child(a, "C\n")
    long = tree.add_child(c, "correct D\n", is_terminal=True)
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert rewards[a].reasoning_distance == 2
    assert rewards[a].quality_value == pytest.approx(1 / 2)
    assert rewards[short].quality_value == pytest.approx(1.0)
    assert rewards[c].quality_value == pytest.approx(3 / 4)  # 1/2 + (1/2)(1/2)
    assert rewards[long].quality_value == pytest.approx(1.0)


def test_correct_path_of_length_d_gets_k_over_d():
    tree = Tree.new("p", "Q: ")
    node_id = 0
    for depth in range(1, 6):
        text = "correct\n" if depth == 5 else f"step {depth}\n"
        node_id = tree.add_child(node_id, text, is_terminal=depth == 5)
    rewards = infer_process_rewards(tree, ends_in_correct)
    assert [rewards[i].quality_value for i in range(1, 6)] == pytest.approx([k / 5 for k in range(1, 6)])


def test_tree_without_correct_leaf_gives_no_rewards():
    tree, ids = worked_example()
    rewards = infer_process_rewards(tree, lambda steps: False)
    assert rewards == {}
    assert value_targets(tree, rewards) == []


def test_unfinished_leaves_are_not_graded():
    tree = Tree.new("p", "Q: ")
    tree.add_child(0, "correct but unfinished\n")  # not terminal, so not a correct answer
    assert infer_process_rewards(tree, ends_in_correct) == {}


def test_value_targets_list_steps_of_every_non_root_node():
    tree, ids = worked_example()
    targets = value_targets(tree, infer_process_rewards(tree, ends_in_correct))
    assert [steps for steps, _ in targets] == [
        ("A\n",),
        ("A\n", "B\n"),
        ("A\n", "B\n", "correct C\n"),
        ("A\n", "wrong B'\n"),
    ]
    assert [value for _, value in targets] == pytest.approx([1 / 3, 2 / 3, 1.0, 1 / 9])


def test_hard_value_targets_are_one_on_the_correct_path_and_zero_off_it():
    tree, ids = worked_example()
    rewards = infer_process_rewards(tree, ends_in_correct)
    targets = dict(value_targets(tree, rewards, "hard"))
    assert targets == {("A\n",): 1.0, ("A\n", "B\n"): 1.0, ("A\n", "B\n", "correct C\n"): 1.0,
                       ("A\n", "wrong B'\n"): 0.0}
    with pytest.raises(ValueError, match="unknown tree value target 'soft'"):
        value_targets(tree, rewards, "soft")


def test_inference_leaves_the_tree_unchanged_and_grading_writes_verdicts():
    tree, ids = worked_example()
    before = tree.to_dict()
    infer_process_rewards(tree, ends_in_correct)
    assert tree.to_dict() == before
    grade_terminal_nodes(tree, ends_in_correct)
    assert [node.answer_correct for node in tree.nodes] == [None, None, None, True, False]


@pytest.mark.parametrize("length, first_wrong", [(1, 1), (2, 1), (2, 2), (7, 1), (7, 4), (7, 7), (16, 9)])
def test_the_binary_search_finds_the_first_wrong_step_in_log2_probes(length, first_wrong):
    from search.value_inference import FirstErrorSearch

    steps = tuple(f"s{i}\n" for i in range(length))
    search, probes = FirstErrorSearch(steps), []
    while not search.done:
        probe = search.probe()
        probes.append(probe)
        search.record(probe, 3 if probe < first_wrong else 0)  # right completions only before the wrong step
    assert search.hi == first_wrong and len(probes) <= math.ceil(math.log2(length)) if length > 1 else not probes
    assert search.labels() == [(steps[:n], 1.0) for n in range(1, first_wrong)] + [(steps[:first_wrong], 0.0)]


def test_monte_carlo_targets_are_any_right_or_the_share_right():
    from search.value_inference import mc_target

    assert [mc_target(c, 4, "mc_hard") for c in (0, 1, 4)] == [0.0, 1.0, 1.0]
    assert [mc_target(c, 4, "mc_soft") for c in (0, 1, 4)] == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="at least one completion"):
        mc_target(0, 0, "mc_soft")
