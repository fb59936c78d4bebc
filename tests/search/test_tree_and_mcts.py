"""Tree bookkeeping and MCTS*: hand-computed selection and backup, expansion rules, stopping, batching."""

from __future__ import annotations

import hashlib
import json

import pytest

from search.mcts import (
    MCTSParams,
    backup,
    best_answer_node,
    exhausted_nodes,
    run_mcts,
    select_leaf,
    sibling_ranks,
    simulate,
)
from search.selection import uct_score
from search.tree import Node, Tree
from search.types import Prefix, ProposedStep

# Deterministic fakes: every answer is a pure function of the prefix (and the sample index), so
# batching cannot change what a tree sees.


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12], 16)


def hash_propose(prefixes, num_samples):
    proposals = []
    for prefix in prefixes:
        steps = []
        for sample_index in range(num_samples):
            code = _digest(prefix.prompt, *prefix.steps, str(sample_index))
            text = "" if code % 11 == 0 else f"s{code % 4}\n"  # a small alphabet, so duplicates occur
            steps.append(ProposedStep(text, num_tokens=1 + code % 5, is_final=code % 5 == 0))
        proposals.append(steps)
    return proposals


def hash_score(prefixes):
    return [(_digest(prefix.prompt, *prefix.steps, "score") % 1000) / 1000 for prefix in prefixes]


def fixed_propose(texts, is_final=False, num_tokens=1):
    """A propose that returns the same steps for every prefix."""

    def propose(prefixes, num_samples):
        return [[ProposedStep(text, num_tokens, is_final) for text in texts[:num_samples]] for _ in prefixes]

    return propose


def constant_score(value):
    return lambda prefixes: [value] * len(prefixes)


class CallCounter:
    """Wraps propose/score and records the batch size of every call."""

    def __init__(self, propose, score):
        self.propose_batches: list[int] = []
        self.score_batches: list[int] = []
        self._propose, self._score = propose, score

    def propose(self, prefixes, num_samples):
        self.propose_batches.append(len(prefixes))
        return self._propose(prefixes, num_samples)

    def score(self, prefixes):
        self.score_batches.append(len(prefixes))
        return self._score(prefixes)


def small_tree() -> Tree:
    """root ─ A (V 0.6) ─ A1 ; root ─ B (V 0.3) ; root ─ C (V 0.9, unvisited)."""
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n", num_tokens=2, prm_score=0.6)
    b = tree.add_child(0, "B\n", num_tokens=3, prm_score=0.3)
    tree.add_child(0, "C\n", num_tokens=4, prm_score=0.9)
    tree.add_child(a, "A1\n", num_tokens=5, prm_score=0.5, is_terminal=True)
    tree.nodes[0].visit_count = 4
    tree.nodes[a].visit_count = 2
    tree.nodes[b].visit_count = 1
    return tree


# Tree ---------------------------------------------------------------------------------------


def test_new_tree_holds_only_an_unvisited_root():
    tree = Tree.new("p1", "Q: 2+2?")
    assert len(tree.nodes) == 1
    root = tree.root
    assert (root.node_id, root.parent_id, root.step_text, root.depth) == (0, None, "", 0)
    assert (root.visit_count, root.value, root.is_terminal, root.children) == (0, 0.0, False, [])
    assert tree.leaves() == [0]
    assert tree.tokens_used == 0


def test_prefix_and_steps_follow_the_path_from_the_root():
    tree = small_tree()
    assert tree.path_to(4) == [0, 1, 4]
    assert tree.steps_of(4) == ("A\n", "A1\n")
    assert tree.steps_of(0) == ()
    assert tree.prefix_of(4) == Prefix("Q: ", ("A\n", "A1\n"))
    assert tree.nodes[4].depth == 2


def test_leaves_and_terminal_nodes_are_listed_in_id_order():
    tree = small_tree()
    assert tree.leaves() == [2, 3, 4]
    assert tree.terminal_nodes() == [4]


def test_tokens_used_counts_kept_dropped_and_rollout_tokens():
    tree = small_tree()
    tree.rollout_tokens = 7
    tree.dropped_tokens = 3
    assert tree.tokens_used == 2 + 3 + 4 + 5 + 7 + 3


def test_tree_round_trips_through_json():
    tree = small_tree()
    tree.nodes[4].answer_correct = True
    tree.rollout_tokens, tree.simulation_count, tree.stop_reason = 5, 3, "max_simulations"
    record = json.loads(json.dumps(tree.to_dict()))
    rebuilt = Tree.from_dict(record)
    assert rebuilt == tree
    assert rebuilt.to_dict() == tree.to_dict()


def test_from_dict_rejects_unknown_keys():
    record = small_tree().to_dict()
    record["nodes"][1]["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        Tree.from_dict(record)


# Selection ----------------------------------------------------------------------------------


def test_unvisited_child_gets_finite_bonus():
    params = MCTSParams(unvisited_bonus=0.8)
    child = Node(node_id=1, parent_id=0, step_text="x\n", depth=1, value=0.25)
    assert uct_score(child, parent_visit_count=5, params=params) == pytest.approx(1.05)


def test_visited_child_scores_value_plus_exploration_term():
    params = MCTSParams(exploration_constant=0.4)
    child = Node(node_id=1, parent_id=0, step_text="x\n", depth=1, value=0.5, visit_count=2)
    # 0.5 + 0.4 * sqrt(2 ln 4 / 2) = 0.5 + 0.4 * 1.177410 = 0.970964
    assert uct_score(child, parent_visit_count=4, params=params) == pytest.approx(0.970964, abs=1e-6)


def test_strong_visited_child_beats_weak_unvisited_child():
    tree = Tree.new("p", "Q: ")
    strong = tree.add_child(0, "A\n", prm_score=0.7)
    tree.add_child(0, "B\n", prm_score=0.05)
    tree.nodes[0].visit_count = 4
    tree.nodes[strong].visit_count = 3
    # A: 0.7 + 0.4 * sqrt(2 ln 4 / 3) = 1.0845; B: 0.05 + 1.0 = 1.05
    assert select_leaf(tree, MCTSParams()) == strong


def test_unvisited_child_with_enough_value_beats_visited_child():
    tree = Tree.new("p", "Q: ")
    visited = tree.add_child(0, "A\n", prm_score=0.7)
    unvisited = tree.add_child(0, "B\n", prm_score=0.1)
    tree.nodes[0].visit_count = 4
    tree.nodes[visited].visit_count = 3
    # A: 1.0845; B: 0.1 + 1.0 = 1.1
    assert select_leaf(tree, MCTSParams()) == unvisited


def test_selection_breaks_ties_by_lowest_node_id():
    tree = Tree.new("p", "Q: ")
    first = tree.add_child(0, "A\n", prm_score=0.5)
    tree.add_child(0, "B\n", prm_score=0.5)
    assert select_leaf(tree, MCTSParams()) == first


def test_selection_descends_to_a_leaf():
    tree = small_tree()
    # root N=4. A: 0.6 + 0.4*sqrt(2 ln 4 / 2) = 1.0710; B: 0.3 + 0.4*sqrt(2 ln 4) = 0.9661;
    # C (unvisited): 0.9 + 1.0 = 1.9, so C; with a bonus of 0.1, C scores 1.0 and A wins,
    # then A's only child A1 is the leaf.
    assert select_leaf(tree, MCTSParams()) == 3
    assert select_leaf(tree, MCTSParams(unvisited_bonus=0.1)) == 4


def half_finished_tree() -> Tree:
    """root (N 6) ─ A (V 0.9, N 3) ─ A1 (terminal, V 0.9, N 2), A2 (terminal, V 0.9, N 1);
    root ─ B (V 0.5, N 3) ─ B1 (terminal, V 0.8, N 2), B2 (V 0.1, N 1, not terminal).

    Ids: root 0, A 1, B 2, A1 3, A2 4, B1 5, B2 6. A's subtree is exhausted, B's is not.
    """
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n", prm_score=0.9)
    b = tree.add_child(0, "B\n", prm_score=0.5)
    a1 = tree.add_child(a, "A1\n", prm_score=0.9, is_terminal=True)
    a2 = tree.add_child(a, "A2\n", prm_score=0.9, is_terminal=True)
    b1 = tree.add_child(b, "B1\n", prm_score=0.8, is_terminal=True)
    b2 = tree.add_child(b, "B2\n", prm_score=0.1)
    for node_id, visits in ((0, 6), (a, 3), (b, 3), (a1, 2), (a2, 1), (b1, 2), (b2, 1)):
        tree.nodes[node_id].visit_count = visits
    return tree


def test_exhausted_nodes_marks_subtrees_whose_leaves_are_all_terminal():
    assert exhausted_nodes(half_finished_tree()) == [False, True, False, True, True, True, False]
    # small_tree: A's only leaf A1 is terminal; B and C are non-terminal leaves
    assert exhausted_nodes(small_tree()) == [False, True, False, False, True]
    assert exhausted_nodes(Tree.new("p", "Q: ")) == [False]


def test_solve_mode_still_selects_terminal_leaf():
    tree = half_finished_tree()
    # root N 6: A 0.9 + 0.4*sqrt(2 ln 6 / 3) = 1.3372 beats B 0.5 + 0.4372 = 0.9372;
    # under A (N 3): A1 0.9 + 0.4*sqrt(2 ln 3 / 2) = 1.3193, A2 0.9 + 0.4*sqrt(2 ln 3) = 1.4929
    assert select_leaf(tree, MCTSParams()) == 4


def test_full_budget_selection_skips_exhausted_subtrees():
    tree = half_finished_tree()
    # A is exhausted, so B; under B (N 3) B1 scores 0.8 + 0.4193 = 1.2193 and B2 only
    # 0.1 + 0.5929 = 0.6929, but B1 is terminal, so B2
    assert select_leaf(tree, MCTSParams(stop_at_end_gate=False)) == 6


def test_full_budget_selection_of_an_exhausted_tree_returns_a_terminal_leaf():
    tree = half_finished_tree()
    tree.nodes[6].is_terminal = True
    assert exhausted_nodes(tree)[0]
    assert select_leaf(tree, MCTSParams(stop_at_end_gate=False)) == 4  # the plain UCT descent


# Backup -------------------------------------------------------------------------------------


def test_backup_takes_visit_weighted_mean_of_visited_children():
    tree = small_tree()
    backup(tree, 2)  # B: visit 1 -> 2, keeps V 0.3 (no children)
    assert tree.nodes[2].visit_count == 2
    assert tree.nodes[2].value == pytest.approx(0.3)
    # root: (2 * 0.6 + 2 * 0.3) / 4 = 0.45; the unvisited C (V 0.9) carries no weight
    assert tree.nodes[0].visit_count == 5
    assert tree.nodes[0].value == pytest.approx(0.45)


def test_backup_through_a_grandchild_updates_every_ancestor():
    tree = small_tree()
    backup(tree, 4)
    # A1: visit 1, keeps 0.5. A: only A1 visited -> 0.5, visit 3. root: (3*0.5 + 1*0.3) / 4 = 0.45
    assert [tree.nodes[i].visit_count for i in (4, 1, 0)] == [1, 3, 5]
    assert tree.nodes[1].value == pytest.approx(0.5)
    assert tree.nodes[0].value == pytest.approx(0.45)


def test_backup_ignores_unvisited_children():
    tree = Tree.new("p", "Q: ")
    leaf = tree.add_child(0, "A\n", prm_score=0.4)
    tree.add_child(leaf, "x\n", prm_score=1.0)
    tree.add_child(leaf, "y\n", prm_score=1.0)
    backup(tree, leaf)
    assert tree.nodes[leaf].visit_count == 1
    assert tree.nodes[leaf].value == pytest.approx(0.4)
    assert tree.nodes[0].value == pytest.approx(0.4)


# Expansion ----------------------------------------------------------------------------------


def test_first_simulation_expands_the_root_and_scores_its_children():
    tree = Tree.new("p", "Q: ")
    scores = {"a\n": 0.2, "b\n": 0.7, "c\n": 0.5}
    def score(prefixes):
        return [scores[prefix.steps[-1]] for prefix in prefixes]
    simulate([tree], fixed_propose(["a\n", "b\n", "c\n"]), score, MCTSParams())
    assert [tree.nodes[i].step_text for i in tree.root.children] == ["a\n", "b\n", "c\n"]
    assert [tree.nodes[i].value for i in tree.root.children] == [0.2, 0.7, 0.5]
    assert [tree.nodes[i].prm_score for i in tree.root.children] == [0.2, 0.7, 0.5]
    assert [tree.nodes[i].visit_count for i in tree.root.children] == [0, 0, 0]
    assert (tree.root.visit_count, tree.root.value) == (1, 0.0)
    assert tree.simulation_count == 1
    # the second simulation visits the best child (all unvisited: V + b decides)
    assert select_leaf(tree, MCTSParams()) == 2


def test_expansion_drops_empty_and_duplicate_proposals():
    tree = Tree.new("p", "Q: ")
    propose = fixed_propose(["a\n", "a\n", " \n", "", "b\n"], num_tokens=2)
    simulate([tree], propose, constant_score(0.5), MCTSParams(branch=5))
    assert [tree.nodes[i].step_text for i in tree.root.children] == ["a\n", "b\n"]
    assert tree.dropped_tokens == 6
    assert tree.tokens_used == 10


def test_leaf_with_only_empty_proposals_becomes_terminal():
    tree = Tree.new("p", "Q: ")
    counter = CallCounter(fixed_propose(["", "\n"]), constant_score(0.5))
    simulate([tree], counter.propose, counter.score, MCTSParams(branch=2))
    assert tree.root.is_terminal and tree.root.children == []
    assert counter.score_batches == []  # nothing new to score
    simulate([tree], counter.propose, counter.score, MCTSParams(branch=2))
    assert tree.stop_reason == "exhausted"
    assert counter.propose_batches == [1]


def test_final_steps_and_the_depth_limit_make_terminal_children():
    final_tree = Tree.new("p", "Q: ")
    simulate([final_tree], fixed_propose(["a\n"], is_final=True), constant_score(0.5), MCTSParams())
    assert tree_is_terminal_below_root(final_tree)

    deep_tree = Tree.new("p", "Q: ")
    params = MCTSParams(max_depth=2, stop_at_end_gate=False, max_simulations=10)
    for _ in range(2):
        simulate([deep_tree], fixed_propose(["a\n", "b\n"]), constant_score(0.5), params)
    depths = {node.depth: node.is_terminal for node in deep_tree.nodes if node.node_id != 0}
    assert depths == {1: False, 2: True}


def tree_is_terminal_below_root(tree: Tree) -> bool:
    return all(tree.nodes[i].is_terminal for i in tree.root.children)


# Rollout ------------------------------------------------------------------------------------


def letter_propose(prefixes, num_samples):
    """Steps x<d>, y<d>, z<d> where d is the prefix's depth."""
    return [
        [ProposedStep(f"{letter}{len(prefix.steps)}\n", 2, False) for letter in "xyz"[:num_samples]]
        for prefix in prefixes
    ]


LETTER_SCORES = {"x0\n": 0.2, "y0\n": 0.6, "z0\n": 0.4, "x1\n": 0.3, "y1\n": 0.8, "z1\n": 0.5, "x2\n": 0.9}


def letter_score(prefixes):
    return [LETTER_SCORES.get(prefix.steps[-1], 0.1) for prefix in prefixes]


@pytest.mark.parametrize(
    "roll_forward_steps, expected_value", [(1, 0.5 * 0.6 + 0.5 * 0.8), (2, 0.5 * 0.6 + 0.5 * 0.9)]
)
def test_rollout_mixes_the_best_value_seen_into_the_best_new_child(roll_forward_steps, expected_value):
    tree = Tree.new("p", "Q: ")
    params = MCTSParams(roll_forward_steps=roll_forward_steps, rollout_alpha=0.5)
    simulate([tree], letter_propose, letter_score, params)
    x0, y0, z0 = tree.root.children
    # greedy path from y0: y1 (0.8), then x2 (0.9); only the best new child is rolled forward
    assert tree.nodes[y0].value == pytest.approx(expected_value)
    assert tree.nodes[y0].prm_score == pytest.approx(0.6)
    assert (tree.nodes[x0].value, tree.nodes[z0].value) == (0.2, 0.4)
    assert len(tree.nodes) == 4  # rollout states are not kept
    assert tree.rollout_tokens == 3 * 2 * roll_forward_steps
    assert tree.tokens_used == 3 * 2 + tree.rollout_tokens


def test_rollout_makes_one_propose_and_one_score_call_per_level_across_trees():
    trees = [Tree.new(f"p{i}", f"Q{i}: ") for i in range(3)]
    counter = CallCounter(letter_propose, letter_score)
    simulate(trees, counter.propose, counter.score, MCTSParams(roll_forward_steps=2))
    assert counter.propose_batches == [3, 3, 3]
    assert counter.score_batches == [9, 9, 9]


# Stopping -----------------------------------------------------------------------------------


def test_end_gate_stops_search_at_a_selected_good_terminal_leaf():
    params = MCTSParams(end_gate=0.9, max_simulations=16)
    [tree] = run_mcts([("p", "Q: ")], fixed_propose(["42\n"], is_final=True), constant_score(0.95), params)
    assert tree.stop_reason == "end_gate"
    assert tree.simulation_count == 1
    assert best_answer_node(tree) == 1


def test_terminal_leaf_below_end_gate_does_not_stop_search():
    params = MCTSParams(end_gate=0.9, max_simulations=16)
    [tree] = run_mcts([("p", "Q: ")], fixed_propose(["42\n"], is_final=True), constant_score(0.5), params)
    assert tree.stop_reason == "exhausted"


def test_without_end_gate_search_spends_the_full_simulation_budget():
    params = MCTSParams(stop_at_end_gate=False, max_simulations=5, max_depth=20)
    propose = fixed_propose(["a\n", "b\n"])
    [tree] = run_mcts([("p", "Q: ")], propose, constant_score(0.95), params)
    assert tree.stop_reason == "max_simulations"
    assert tree.simulation_count == 5
    assert tree.root.visit_count == 5


def done_or_think_propose(prefixes, num_samples):
    """Under every prefix: a final step 'done' and a step 'think<d>' (d = the prefix's depth)."""
    return [
        [ProposedStep("done\n", 1, True), ProposedStep(f"think{len(prefix.steps)}\n", 1, False)][:num_samples]
        for prefix in prefixes
    ]


def done_or_think_score(prefixes):
    return [0.95 if prefix.steps[-1] == "done\n" else 0.1 for prefix in prefixes]


def test_full_budget_search_expands_unexplored_steps_instead_of_revisiting_a_finished_one():
    params = MCTSParams(stop_at_end_gate=False, max_simulations=4, branch=2)
    [tree] = run_mcts([("p", "Q: ")], done_or_think_propose, done_or_think_score, params)
    # each simulation skips the exhausted 'done' (V 0.95) and expands the newest 'think':
    # root -> done 1, think0 2; think0 -> done 3, think1 4; think1 -> 5, 6; think2 -> 7, 8
    assert tree.stop_reason == "max_simulations"
    assert tree.simulation_count == 4
    assert len(tree.nodes) == 9
    assert tree.steps_of(8) == ("think0\n", "think1\n", "think2\n", "think3\n")
    assert [tree.nodes[i].visit_count for i in tree.terminal_nodes()] == [0, 0, 0, 0]
    assert [tree.nodes[i].visit_count for i in (0, 2, 4, 6)] == [4, 3, 2, 1]


def test_solve_mode_search_keeps_revisiting_a_good_terminal_leaf_below_the_end_gate():
    params = MCTSParams(end_gate=0.99, max_simulations=4, branch=2)
    [tree] = run_mcts([("p", "Q: ")], done_or_think_propose, done_or_think_score, params)
    # after the root's expansion, done (1.95, then 0.95 + 0.4*sqrt(2 ln 2) = 1.4210, then
    # 0.95 + 0.4*sqrt(2 ln 3 / 2) = 1.3693) beats the unvisited think0 (0.1 + 1.0) every time
    assert tree.stop_reason == "max_simulations"
    assert tree.simulation_count == 4
    assert len(tree.nodes) == 3
    assert tree.nodes[1].visit_count == 3 and tree.nodes[2].visit_count == 0


def test_full_budget_search_stops_exhausted_when_every_leaf_is_terminal():
    params = MCTSParams(stop_at_end_gate=False, max_simulations=16, branch=2, max_depth=2)
    counter = CallCounter(done_or_think_propose, done_or_think_score)
    [tree] = run_mcts([("p", "Q: ")], counter.propose, counter.score, params)
    # root -> done 1, think0 2; think0 -> done 3, think1 4 (terminal at the depth limit); then
    # every leaf is terminal, so the third selection stops the search without a simulation
    assert tree.stop_reason == "exhausted"
    assert tree.simulation_count == 2
    assert len(tree.nodes) == 5
    assert tree.terminal_nodes() == [1, 3, 4]
    assert counter.propose_batches == [1, 1]
    assert tree.root.visit_count == 2


def test_selecting_a_terminal_leaf_again_counts_as_a_simulation():
    tree = Tree.new("p", "Q: ")
    params = MCTSParams(end_gate=0.9, max_simulations=16)
    tree.add_child(0, "done\n", prm_score=0.5, is_terminal=True)
    tree.add_child(0, "more\n", prm_score=0.1)
    tree.root.visit_count = 1
    simulate([tree], fixed_propose(["a\n"]), constant_score(0.5), params)
    assert tree.simulation_count == 1
    assert len(tree.nodes) == 3  # nothing expanded
    assert tree.nodes[1].visit_count == 1 and tree.root.visit_count == 2


def test_token_budget_is_exceeded_by_at_most_one_expansion():
    params_list = [
        MCTSParams(max_tokens=budget, max_simulations=1000, stop_at_end_gate=False, roll_forward_steps=rollout)
        for budget in (1, 10, 37, 100)
        for rollout in (0, 2)
    ]
    prompts = [(f"p{i}", f"Q{i}: ") for i in range(4)]
    for params in params_list:
        # hash_propose steps cost at most 5 tokens; one expansion = branch proposals + its rollout
        one_expansion = params.branch * 5 * (1 + params.roll_forward_steps)
        for tree in run_mcts(prompts, hash_propose, hash_score, params):
            assert tree.tokens_used < params.max_tokens + one_expansion
            if tree.stop_reason == "max_tokens":
                assert tree.tokens_used >= params.max_tokens


# Batching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        MCTSParams(max_simulations=12, max_depth=4),
        MCTSParams(max_simulations=12, max_depth=6, stop_at_end_gate=False, roll_forward_steps=2),
        MCTSParams(max_simulations=40, max_tokens=120, end_gate=0.8, branch=4, roll_forward_steps=1),
    ],
)
def test_batched_search_equals_each_tree_searched_alone(params):
    prompts = [(f"p{i}", f"Question {i}: ") for i in range(6)]
    batched = run_mcts(prompts, hash_propose, hash_score, params)
    alone = [run_mcts([prompt], hash_propose, hash_score, params)[0] for prompt in prompts]
    assert [tree.to_dict() for tree in batched] == [tree.to_dict() for tree in alone]
    assert len({len(tree.nodes) for tree in batched}) > 1  # the trees really differ


def test_one_simulation_makes_one_propose_and_one_score_call_for_all_trees():
    trees = [Tree.new(f"p{i}", f"Q{i}: ") for i in range(4)]
    counter = CallCounter(hash_propose, hash_score)
    params = MCTSParams(stop_at_end_gate=False, max_depth=6)
    for _ in range(4):
        counter.propose_batches.clear()
        counter.score_batches.clear()
        nodes_before = sum(len(tree.nodes) for tree in trees)
        simulate(trees, counter.propose, counter.score, params)
        new_children = sum(len(tree.nodes) for tree in trees) - nodes_before
        assert len(counter.propose_batches) <= 1
        assert counter.score_batches == ([new_children] if new_children else [])


# Reading the answer -------------------------------------------------------------------------


def answer_tree() -> Tree:
    """Terminal nodes: 7 (V 0.5), 7 (V 0.25), 8 (V 0.625), and one without an answer (V 0.9)."""
    tree = Tree.new("p", "Q: ")
    for answer, value in (("7", 0.5), ("7", 0.25), ("8", 0.625), (None, 0.9)):
        text = f"answer {answer}\n" if answer else "giving up\n"
        tree.add_child(0, text, prm_score=value, is_terminal=True)
    tree.add_child(0, "thinking\n", prm_score=0.95)
    return tree


def test_best_answer_node_is_the_best_valued_terminal_node():
    tree = answer_tree()
    assert best_answer_node(tree) == 4  # 0.9 beats 0.625; the non-terminal 0.95 does not count
    tree.nodes[3].value = 0.9
    assert best_answer_node(tree) == 3  # tie: lowest id
    assert best_answer_node(Tree.new("p", "Q: ")) is None


def test_best_answer_node_counts_values_within_the_margin_as_tied():
    tree = answer_tree()
    tree.nodes[3].value = 0.89
    assert best_answer_node(tree) == 4  # 0.9 beats 0.89 without a margin
    assert best_answer_node(tree, margin=0.02) == 3  # within 0.02: the earlier terminal
    assert best_answer_node(tree, margin=0.005) == 4


def test_near_ties_go_to_the_path_of_first_proposed_children_not_the_lowest_id():
    # root -> a (first proposal) -> a1 (terminal, created last); root -> b -> b1 (terminal, created first).
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "a\n")
    b = tree.add_child(0, "b\n")
    b1 = tree.add_child(b, "b1\n", is_terminal=True)
    a1 = tree.add_child(a, "a1\n", is_terminal=True)
    tree.nodes[b1].value, tree.nodes[a1].value = 0.70, 0.65
    assert sibling_ranks(tree, a1) == (0, 0) and sibling_ranks(tree, b1) == (1, 0)
    assert best_answer_node(tree) == b1
    assert best_answer_node(tree, margin=0.1) == a1  # within the margin: the first proposals' path
    tree.nodes[a1].value = 0.70
    assert best_answer_node(tree) == a1  # an exact tie too


# Parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"branch": 0}, {"max_depth": 0}, {"max_simulations": 0}, {"rollout_alpha": 1.5}, {"max_tokens": -1}],
)
def test_params_reject_invalid_values(changes):
    with pytest.raises(ValueError):
        MCTSParams(**changes)


def test_params_are_frozen():
    with pytest.raises(AttributeError):
        MCTSParams().branch = 5  # type: ignore[misc]



def test_first_path_first_completes_the_path_of_first_proposals_before_uct():
    # letter_score ranks x (the first proposal) lowest at depths 0-1, so UCT alone leaves the x path at once.
    def final_at_3(prefixes, n):
        return [
            [ProposedStep(step.text, step.num_tokens, len(prefix.steps) >= 2) for step in steps]
            for prefix, steps in zip(prefixes, letter_propose(prefixes, n))]
    uct_only = run_mcts([("p", "Q: ")], final_at_3, letter_score, MCTSParams(max_simulations=3, end_gate=2.0))[0]
    assert uct_only.steps_of(uct_only.nodes[uct_only.root.children[0]].node_id) == ("x0\n",)
    assert uct_only.nodes[uct_only.root.children[0]].children == []  # x0 never expanded

    params = MCTSParams(max_simulations=5, end_gate=2.0, first_path_first=True)
    tree = run_mcts([("p", "Q: ")], final_at_3, letter_score, params)[0]
    first_path = [0]
    while tree.nodes[first_path[-1]].children:
        first_path.append(tree.nodes[first_path[-1]].children[0])
    end = tree.nodes[first_path[-1]]
    assert tree.steps_of(end.node_id) == ("x0\n", "x1\n", "x2\n") and end.is_terminal
    assert tree.nodes[first_path[1]].visit_count >= 2 and tree.nodes[first_path[2]].visit_count >= 1
    assert sibling_ranks(tree, end.node_id) == (0, 0, 0)
    assert best_answer_node(tree, margin=1.0) == end.node_id
    assert tree.simulation_count == 5  # then UCT spends the rest of the budget
