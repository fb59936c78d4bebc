"""MCTS* with verifiers: a leaf scorer values terminal children, a step scorer the others, tokens are charged."""

from __future__ import annotations

from search.mcts import MCTSParams, Scorers, complete_best_paths, run_mcts, score_nodes
from search.tree import Tree
from search.types import ProposedStep, VerifierScores


def propose(prefixes, num_samples):
    """Two candidates per prefix: 'a' and 'b' steps; the second step of a path is final."""
    out = []
    for prefix in prefixes:
        final = len(prefix.steps) >= 1
        out.append([ProposedStep(f"{letter}{len(prefix.steps)}\n", 3, final) for letter in "ab"][:num_samples])
    return out


def prm(prefixes):
    return [0.5 for _ in prefixes]


def recording_verifier(value_of, tokens_each):
    seen = []

    def verify(prefixes):
        seen.extend(prefixes)
        return VerifierScores([value_of(p) for p in prefixes], [tokens_each] * len(prefixes), [0] * len(prefixes))

    verify.seen = seen
    return verify


def test_a_leaf_verifier_values_terminal_children_and_the_prm_the_others():
    leaf = recording_verifier(lambda p: 0.95 if p.steps[-1].startswith("b") else 0.05, tokens_each=10)
    params = MCTSParams(branch=2, max_simulations=10, stop_at_end_gate=True, end_gate=0.9)
    [tree] = run_mcts([("p", "q\n")], propose, Scorers(prm, leaf_verify=leaf), params)
    for node in tree.nodes[1:]:
        if node.is_terminal:
            assert node.value == (0.95 if node.step_text.startswith("b") else 0.05)
        else:
            assert node.prm_score == 0.5
    assert leaf.seen and all(len(p.steps) == 2 for p in leaf.seen)
    assert tree.verifier_tokens == 10 * len(leaf.seen)
    assert tree.tokens_used == sum(n.num_tokens for n in tree.nodes) + tree.dropped_tokens + tree.verifier_tokens
    assert tree.stop_reason == "end_gate"


def test_a_step_verifier_values_internal_children_in_place_of_the_prm():
    step = recording_verifier(lambda p: 0.7, tokens_each=4)
    params = MCTSParams(branch=2, max_simulations=2, stop_at_end_gate=False)
    [tree] = run_mcts([("p", "q\n")], propose, Scorers(prm, step_verify=step), params)
    internal = [n for n in tree.nodes[1:] if not n.is_terminal]
    terminal = [n for n in tree.nodes[1:] if n.is_terminal]
    assert internal and all(n.prm_score == 0.7 for n in internal)
    assert terminal and all(n.prm_score == 0.5 for n in terminal)
    assert tree.verifier_tokens == 4 * len(internal)


def test_a_plain_score_function_still_searches_as_before():
    params = MCTSParams(branch=2, max_simulations=3, stop_at_end_gate=False)
    [plain] = run_mcts([("p", "q\n")], propose, prm, params)
    [wrapped] = run_mcts([("p", "q\n")], propose, Scorers(prm), params)
    assert plain.to_dict() == wrapped.to_dict()
    assert plain.verifier_tokens == 0


def test_score_nodes_calls_each_scorer_once_and_keeps_the_order():
    tree = Tree.new("p", "q\n")
    first = tree.add_child(0, "a\n", 1)
    done = tree.add_child(0, "b\n", 1, is_terminal=True)
    second = tree.add_child(first, "c\n", 1)
    leaf = recording_verifier(lambda p: 0.9, tokens_each=2)
    step = recording_verifier(lambda p: 0.3, tokens_each=1)
    values = score_nodes([(tree, first), (tree, done), (tree, second)], Scorers(prm, leaf, step))
    assert values == [0.3, 0.9, 0.3]
    assert len(leaf.seen) == 1 and len(step.seen) == 2
    assert tree.verifier_tokens == 2 + 1 + 1


def test_completing_a_best_path_values_its_terminal_step_with_the_leaf_verifier():
    tree = Tree.new("p", "q\n")
    tree.add_child(0, "a0\n", 3)

    def greedy(prefixes):
        return [ProposedStep("z\n", 2, True) for _ in prefixes]

    leaf = recording_verifier(lambda p: 0.8, tokens_each=6)
    complete_best_paths([tree], greedy, Scorers(prm, leaf_verify=leaf), max_depth=5)
    finished = tree.nodes[tree.terminal_nodes()[0]]
    assert finished.value == 0.8 and tree.verifier_tokens == 6


def test_trees_written_before_verifier_tokens_existed_still_load():
    record = Tree.new("p", "q\n").to_dict()
    del record["verifier_tokens"]
    assert Tree.from_dict(record).verifier_tokens == 0
