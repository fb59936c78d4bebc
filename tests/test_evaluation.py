"""Round metrics on hand-built trees: the PRM's sibling ranking."""

import pytest

from rest_mcts.round_metrics import sibling_ranking
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


class _AnswerTask:
    """Grades a terminal by its last step's text: 'right\n' is the oracle's answer; every terminal has an answer."""

    @staticmethod
    def is_correct(problem, steps):
        return steps[-1] == "right\n"

    @staticmethod
    def extract_answer(steps):
        return steps[-1].strip()

    @staticmethod
    def difficulty(problem):
        return None  # no lengths: no per-length accuracy


def _first_path_and_alternative(first: str, alternative: str, gap: float) -> Tree:
    tree = Tree.new("p", "Q\n")
    tree.add_child(0, first, prm_score=0.5, is_terminal=True)
    tree.add_child(0, alternative, prm_score=0.5 + gap, is_terminal=True)
    for node in tree.nodes[1:]:
        node.value = node.prm_score
    return tree


def test_pick_answer_margin_keeps_the_first_path_where_the_prm_overrules_it_wrongly():
    from rest_mcts.round_metrics import ANSWER_MARGINS, pick_answer_margin

    trees = [_first_path_and_alternative("right\n", "wrong\n", 0.15)] * 3 + [
        _first_path_and_alternative("wrong\n", "right\n", 0.15)]
    choice = pick_answer_margin(_AnswerTask(), [None] * 4, trees)
    # Margins up to 0.1 follow the PRM (1 of 4 right); from 0.2 on the first path wins (3 of 4).
    assert choice.accuracy == {m: (0.25 if m < 0.15 else 0.75) for m in ANSWER_MARGINS}
    assert choice.margin == 1.0 and choice.p_value[0.0] == pytest.approx(15 / 16)  # 1 win, 3 losses


def test_pick_answer_margin_lets_the_prm_overrule_only_on_significant_evidence():
    from rest_mcts.round_metrics import pick_answer_margin

    def trees(wins: int, losses: int) -> list[Tree]:
        return [_first_path_and_alternative("wrong\n", "right\n", 0.15)] * wins + [
            _first_path_and_alternative("right\n", "wrong\n", 0.15)] * losses

    # 3 wins, 1 loss: more accurate, but p = 5/16 could be chance; the first path stays.
    choice = pick_answer_margin(_AnswerTask(), [None] * 4, trees(3, 1))
    assert choice.margin == 1.0 and choice.accuracy[0.1] == 0.75 and choice.p_value[0.1] == pytest.approx(5 / 16)
    # 8 wins, 1 loss: p = 10/512 = 0.0195, not below 0.01 / 5 margins tested: the first path stays.
    choice = pick_answer_margin(_AnswerTask(), [None] * 9, trees(8, 1))
    assert choice.margin == 1.0 and choice.p_value[0.1] == pytest.approx(10 / 512)
    # 12 wins, 1 loss: p = 14/8192 < 0.002; the largest of the equally accurate PRM-led margins is taken.
    choice = pick_answer_margin(_AnswerTask(), [None] * 13, trees(12, 1))
    assert choice.margin == 0.1 and choice.p_value[0.1] == pytest.approx(14 / 8192)
    assert pick_answer_margin(_AnswerTask(), [None] * 9, trees(8, 1), significance=0.1).margin == 0.1
    # Fewer trees than problems is an error, not a silent truncation.
    with pytest.raises(ValueError):
        pick_answer_margin(_AnswerTask(), [None] * 10, trees(8, 1))


class _LabelledTask(_AnswerTask):
    """_AnswerTask with true step labels: a prefix is right while its steps are 'right\n'."""

    synthetic = True

    @staticmethod
    def step_labels(problem, steps):
        labels, right = [], True
        for step in steps:
            right = right and step == "right\n"
            labels.append(right)
        return labels


def _scored_tree() -> Tree:
    tree = Tree.new("p", "Q\n")
    tree.add_child(0, "right\n", num_tokens=4, prm_score=0.8, is_terminal=True)
    tree.add_child(0, "wrong\n", num_tokens=6, prm_score=0.3, is_terminal=True)
    return tree


def test_mcts_metrics_keep_todays_keys_by_default_and_name_the_method_and_scorer_when_asked():
    from rest_mcts.round_metrics import mcts_metrics

    tree = _scored_tree()
    assert mcts_metrics(_LabelledTask(), [None], [tree], "test") == {
        "test/mcts/accuracy": 1.0, "test/mcts/tokens_per_problem": 10.0, "test/prm/auroc": 1.0,
        "test/prm/sibling_accuracy": 1.0, "test/prm/sibling_pairs": 1.0}
    assert mcts_metrics(_LabelledTask(), [None], [tree], "ood", 0.0, "mcts_step_verifier", "step_verifier") == {
        "ood/mcts_step_verifier/accuracy": 1.0, "ood/mcts_step_verifier/tokens_per_problem": 10.0,
        "ood/step_verifier/auroc": 1.0, "ood/step_verifier/sibling_accuracy": 1.0,
        "ood/step_verifier/sibling_pairs": 1.0}
    # a leaf verifier values only the terminals: no one scorer to rank the steps
    assert mcts_metrics(_LabelledTask(), [None], [tree], "test", 0.0, "mcts_leaf_verifier", None) == {
        "test/mcts_leaf_verifier/accuracy": 1.0, "test/mcts_leaf_verifier/tokens_per_problem": 10.0}


def test_length_accuracy_groups_the_problems_by_difficulty():
    from lm.data import Problem
    from rest_mcts.round_metrics import length_accuracy
    from rest_mcts.tasks.modtarget import ModTargetTask

    task = ModTargetTask()
    questions = ["3?4=7", "3?4?2=9", "1?1?1?1=4", "3?4?2=5", "9?9?9=0", "2?5=7"]  # 1, 2, 3, 2, 2, 1 operations
    problems = [Problem(f"p{i}", q, q) for i, q in enumerate(questions)]
    correct = [True, True, False, False, True, True]
    assert length_accuracy(task, problems, correct, "test/greedy") == {
        "test/greedy/accuracy_len1": 1.0, "test/greedy/accuracy_len2": 2 / 3, "test/greedy/accuracy_len3": 0.0}
    assert list(length_accuracy(task, problems, correct, "ood/mcts")) == [
        "ood/mcts/accuracy_len1", "ood/mcts/accuracy_len2", "ood/mcts/accuracy_len3"]  # shortest first
    assert length_accuracy(_LabelledTask(), [None, None], [True, False], "test/mcts") == {}  # no difficulty


def _tree_with_a_pruned_favourite() -> Tree:
    """root ─ R 'right' (PRM 0.8) ; root ─ W 'wrong' (PRM 0.9, pruned by the check: terminal, V 0)."""
    tree = Tree.new("p", "Q\n")
    tree.add_child(0, "right\n", num_tokens=4, prm_score=0.8, is_terminal=True)
    wrong = tree.add_child(0, "wrong\n", num_tokens=6, prm_score=0.9, is_terminal=True)
    tree.nodes[wrong].pruned, tree.nodes[wrong].value = True, 0.0
    tree.step_checks = 2
    return tree


def test_step_ranking_checked_scores_pruned_nodes_zero_without_changing_the_tree():
    from rest_mcts.round_metrics import step_ranking

    tree = _tree_with_a_pruned_favourite()
    # The PRM alone ranks the wrong step first; with the check's 0 for the pruned step, the right one leads.
    assert step_ranking(_LabelledTask(), [None], [tree]) == {
        "auroc": 0.0, "sibling_accuracy": 0.0, "sibling_pairs": 1.0}
    assert step_ranking(_LabelledTask(), [None], [tree], checked=True) == {
        "auroc": 1.0, "sibling_accuracy": 1.0, "sibling_pairs": 1.0}
    assert tree.nodes[2].prm_score == 0.9 and tree.nodes[2].pruned


def test_mcts_metrics_report_the_checked_step_scorer_and_the_checks_when_the_trees_were_checked():
    from rest_mcts.round_metrics import mcts_metrics

    tree = _tree_with_a_pruned_favourite()
    assert mcts_metrics(_LabelledTask(), [None], [tree], "test") == {
        "test/mcts/accuracy": 1.0, "test/mcts/tokens_per_problem": 10.0,
        "test/prm/auroc": 0.0, "test/prm/sibling_accuracy": 0.0, "test/prm/sibling_pairs": 1.0,
        "test/step_scorer/auroc": 1.0, "test/step_scorer/sibling_accuracy": 1.0, "test/step_scorer/sibling_pairs": 1.0,
        "test/mcts/step_checks_per_problem": 2.0}
    tree.step_checks = 0  # not checked: no step scorer metrics
    assert "test/step_scorer/auroc" not in mcts_metrics(_LabelledTask(), [None], [tree], "test")
