"""Anytime answers: `best_leaf` and `complete_best_paths`, which continue the best path of a tree that has no
finished solution with greedy steps, and `best_answer_node` reading the completed terminal."""

from __future__ import annotations

import pytest

from search.mcts import best_answer_node, best_leaf, complete_best_paths
from search.tree import Tree
from search.types import ProposedStep


class FakeModels:
    """A greedy policy that writes `g<depth>` steps (final at depth `final_at`; `empty_at`: an empty step at that
    depth) with `tokens` tokens each, and a scorer worth depth / 10 + 0.01; both record their batches."""

    def __init__(self, final_at: int = 100, tokens: int = 3, empty_at: int | None = None, empty_text: str = ""):
        self.final_at, self.tokens, self.empty_at, self.empty_text = final_at, tokens, empty_at, empty_text
        self.greedy_batches: list[list[tuple[str, tuple[str, ...]]]] = []
        self.score_batches: list[list[tuple[str, tuple[str, ...]]]] = []

    def greedy(self, prefixes):
        self.greedy_batches.append([(p.prompt, p.steps) for p in prefixes])
        steps = []
        for prefix in prefixes:
            depth = len(prefix.steps) + 1
            if depth == self.empty_at:
                steps.append(ProposedStep(self.empty_text, self.tokens, True))
            else:
                steps.append(ProposedStep(f"g{depth}\n", self.tokens, depth >= self.final_at))
        return steps

    def score(self, prefixes):
        self.score_batches.append([(p.prompt, p.steps) for p in prefixes])
        return [len(p.steps) / 10 + 0.01 for p in prefixes]


def unfinished_tree(prompt: str = "Q: ") -> Tree:
    """root ─ A (V 0.6) ─ A1 (V 0.5) ─ A1x (V 0.2); root ─ B (V 0.3) ─ B1 (V 0.9); root ─ C (V 0.4). No terminal."""
    tree = Tree.new("p", prompt)
    a = tree.add_child(0, "A\n", num_tokens=2, prm_score=0.6)
    b = tree.add_child(0, "B\n", num_tokens=2, prm_score=0.3)
    tree.add_child(0, "C\n", num_tokens=2, prm_score=0.4)
    a1 = tree.add_child(a, "A1\n", num_tokens=2, prm_score=0.5)
    tree.add_child(b, "B1\n", num_tokens=2, prm_score=0.9)
    tree.add_child(a1, "A1x\n", num_tokens=2, prm_score=0.2)
    return tree


# best_leaf.


def test_best_leaf_follows_the_highest_valued_child_at_every_level():
    tree = unfinished_tree()
    assert best_leaf(tree) == 6  # A (0.6, not B's 0.3 although B1 is 0.9), then A1, then A1x
    tree.nodes[2].value = 0.7  # B now beats A
    assert best_leaf(tree) == 5
    tree.nodes[3].value = 0.8  # C beats both
    assert best_leaf(tree) == 3


def test_best_leaf_breaks_ties_by_the_earlier_child():
    tree = Tree.new("p", "Q: ")
    tree.add_child(0, "X\n", prm_score=0.5)
    tree.add_child(0, "Y\n", prm_score=0.5)
    tree.add_child(0, "Z\n", prm_score=0.2)
    assert best_leaf(tree) == 1


def test_best_leaf_of_a_bare_root_is_the_root():
    assert best_leaf(Tree.new("p", "Q: ")) == 0


# complete_best_paths.


def test_the_best_path_is_continued_to_a_final_step_with_scored_nodes():
    tree, models = unfinished_tree(), FakeModels(final_at=5, tokens=3)
    tokens_before, count_before = tree.tokens_used, len(tree.nodes)
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    new = list(range(count_before, len(tree.nodes)))
    assert new == [7, 8]
    assert tree.steps_of(8) == ("A\n", "A1\n", "A1x\n", "g4\n", "g5\n")
    assert [tree.nodes[i].parent_id for i in new] == [6, 7]
    assert [tree.nodes[i].is_terminal for i in new] == [False, True]
    assert tree.terminal_nodes() == [8]
    assert [tree.nodes[i].prm_score for i in new] == pytest.approx([0.41, 0.51])
    assert [tree.nodes[i].value for i in new] == pytest.approx([0.41, 0.51])
    assert tree.tokens_used == tokens_before + 2 * 3
    assert tree.dropped_tokens == 0


def test_best_answer_node_then_reads_the_completed_terminal():
    tree, models = unfinished_tree(), FakeModels(final_at=4)
    assert best_answer_node(tree) is None
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    answer = best_answer_node(tree)
    assert answer is not None and tree.steps_of(answer) == ("A\n", "A1\n", "A1x\n", "g4\n")
    assert best_answer_node(tree, margin=1.0) == answer


def test_one_greedy_and_one_score_call_per_level_with_every_open_tree():
    # Tree 0 needs one step (its best leaf is at depth 3, final at 4), tree 1 (a bare root) four; tree 2 is done.
    done = unfinished_tree("done: ")
    done.add_child(3, "final\n", num_tokens=1, is_terminal=True)
    trees = [unfinished_tree("first: "), Tree.new("q", "second: "), done]
    models = FakeModels(final_at=4)
    complete_best_paths(trees, models.greedy, models.score, max_depth=10)
    assert [len(batch) for batch in models.greedy_batches] == [2, 1, 1, 1]
    assert [len(batch) for batch in models.score_batches] == [2, 1, 1, 1]
    assert models.greedy_batches[0] == [("first: ", ("A\n", "A1\n", "A1x\n")), ("second: ", ())]
    assert models.greedy_batches[1] == [("second: ", ("g1\n",))]
    assert models.score_batches[0] == [("first: ", ("A\n", "A1\n", "A1x\n", "g4\n")), ("second: ", ("g1\n",))]
    assert all(prompt == "second: " for batch in models.greedy_batches[1:] for prompt, _ in batch)
    assert trees[1].steps_of(best_answer_node(trees[1])) == ("g1\n", "g2\n", "g3\n", "g4\n")


def test_a_tree_that_already_holds_a_terminal_is_left_alone():
    tree = unfinished_tree()
    tree.add_child(3, "wrong final\n", num_tokens=1, prm_score=0.1, is_terminal=True)  # off the best path
    before = tree.to_dict()
    models = FakeModels()
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    assert tree.to_dict() == before
    assert models.greedy_batches == [] and models.score_batches == []


def test_no_trees_and_no_open_trees_call_nothing():
    models = FakeModels()
    complete_best_paths([], models.greedy, models.score, max_depth=10)
    assert models.greedy_batches == [] and models.score_batches == []


@pytest.mark.parametrize("max_depth, depths", [(5, [4, 5]), (4, [4]), (1, [4])])
def test_the_path_stops_at_max_depth_without_a_final_step(max_depth, depths):
    # The best leaf sits at depth 3; a leaf at or past the limit still gets one (terminal) step.
    tree, models = unfinished_tree(), FakeModels()
    complete_best_paths([tree], models.greedy, models.score, max_depth=max_depth)
    new = tree.nodes[7:]
    assert [node.depth for node in new] == depths
    assert [node.is_terminal for node in new] == [False] * (len(depths) - 1) + [True]
    assert len(models.greedy_batches) == len(depths)


def test_a_bare_root_is_continued_from_its_first_step():
    tree, models = Tree.new("p", "Q: "), FakeModels(tokens=4)
    complete_best_paths([tree], models.greedy, models.score, max_depth=3)
    assert tree.steps_of(3) == ("g1\n", "g2\n", "g3\n")
    assert tree.terminal_nodes() == [3]
    assert tree.tokens_used == 12


@pytest.mark.parametrize("empty_text", ["", "\n", "  "])
def test_an_empty_greedy_step_makes_the_leaf_terminal_and_its_tokens_dropped(empty_text):
    tree, models = unfinished_tree(), FakeModels(tokens=3, empty_at=4, empty_text=empty_text)
    count_before, tokens_before = len(tree.nodes), tree.tokens_used
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    assert len(tree.nodes) == count_before
    assert tree.terminal_nodes() == [6]
    assert tree.dropped_tokens == 3 and tree.tokens_used == tokens_before + 3
    assert models.score_batches == []  # nothing new to score
    assert best_answer_node(tree) == 6


def test_an_empty_step_after_greedy_steps_ends_the_path_at_the_last_new_node():
    tree, models = unfinished_tree(), FakeModels(tokens=2, empty_at=6)
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    assert tree.terminal_nodes() == [8]
    assert tree.steps_of(8) == ("A\n", "A1\n", "A1x\n", "g4\n", "g5\n")
    assert tree.dropped_tokens == 2
    assert [len(batch) for batch in models.greedy_batches] == [1, 1, 1]
    assert [len(batch) for batch in models.score_batches] == [1, 1]


def test_an_empty_step_in_one_tree_does_not_stop_the_others():
    first, second = unfinished_tree("first: "), Tree.new("q", "second: ")
    models = FakeModels(final_at=3, empty_at=4)  # first (best leaf at depth 3) gets the empty step
    complete_best_paths([first, second], models.greedy, models.score, max_depth=10)
    assert first.terminal_nodes() == [6] and len(first.nodes) == 7
    assert second.steps_of(second.terminal_nodes()[0]) == ("g1\n", "g2\n", "g3\n")
    assert [len(batch) for batch in models.score_batches] == [1, 1, 1]


def test_ancestor_values_on_the_path_are_not_changed():
    tree, models = unfinished_tree(), FakeModels(final_at=5)
    values = [node.value for node in tree.nodes]
    complete_best_paths([tree], models.greedy, models.score, max_depth=10)
    assert [node.value for node in tree.nodes[: len(values)]] == values


def test_a_score_that_does_not_answer_every_prefix_is_refused():
    tree, models = unfinished_tree(), FakeModels(final_at=5)
    with pytest.raises(ValueError, match="score returned 0 values for 1 prefixes"):
        complete_best_paths([tree], models.greedy, lambda prefixes: [], max_depth=10)
