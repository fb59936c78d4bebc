"""Round metrics on hand-built trees: the PRM's sibling ranking."""

from rest_mcts.evaluation import sibling_ranking
from search.tree import Tree


def test_sibling_ranking_counts_right_over_wrong_pairs_under_each_node():
    tree = Tree.new("p0", "Q\n")
    right = tree.add_child(0, "a\n", prm_score=0.7)
    wrong = tree.add_child(0, "b\n", prm_score=0.9)
    tied = tree.add_child(0, "c\n", prm_score=0.7)
    deeper_right = tree.add_child(right, "d\n", prm_score=0.6)
    deeper_wrong = tree.add_child(right, "e\n", prm_score=0.2)
    under_wrong = tree.add_child(wrong, "f\n", prm_score=0.5)
    labels = {right: True, wrong: False, tied: False, deeper_right: True, deeper_wrong: False, under_wrong: False}
    ranked_right, pairs = sibling_ranking(tree, labels)
    # Root: (a, b) wrong order, (a, c) tie; under a: (d, e) right order; under b: no right child.
    assert pairs == 3 and ranked_right == 0.0 + 0.5 + 1.0
