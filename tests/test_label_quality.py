"""experiments/label_quality.py: the tree's labellings and the ranking figures by hand, then the whole comparison on
a tiny run's trees through its command line (Monte Carlo labels on the run's search workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from experiments.label_quality import ranking, tree_labels
from search.tree import Tree
from tests.test_iterate import REPO, TINY, finish, iterate


def test_tree_labels_give_the_hard_estimate_the_quality_value_and_the_visit_weighted_outcome():
    tree = Tree.new("p", "Q: ")
    a = tree.add_child(0, "A\n")
    right = tree.add_child(a, "right\n", is_terminal=True)
    wrong = tree.add_child(a, "wrong\n", is_terminal=True)
    tree.nodes[right].visit_count, tree.nodes[wrong].visit_count = 1, 3
    task = SimpleNamespace(is_correct=lambda problem, steps: steps[-1] == "right\n")
    labels = tree_labels(task, None, tree)
    assert labels["tree_hard"] == {a: 1.0, right: 1.0, wrong: 0.0}
    assert labels["tree_q"] == {a: 0.25, right: 1.0, wrong: 0.0}  # one visit of four ended right
    assert labels["tree_quality"][right] == 1.0 > labels["tree_quality"][wrong]


def test_ranking_counts_auroc_over_nodes_and_sibling_pairs_with_ties_half():
    def row(steps, target, label):
        return {"problem_id": "p", "steps": steps, "target": target, "label": label}

    rows = [row(["a"], 0.9, True), row(["b"], 0.1, False), row(["c"], 0.9, False), row(["a", "x"], 0.5, True)]
    figures = ranking(rows)
    assert figures["nodes"] == 4 and figures["sibling_pairs"] == 2  # (a, b) and (a, c) under the root
    assert figures["sibling_accuracy"] == 0.75  # a over b right, a and c tied
    assert figures["auroc"] == pytest.approx(2.5 / 4)  # right 0.9, 0.5 against wrong 0.1, 0.9 (a tie counts half)


@pytest.mark.slow
def test_the_comparison_labels_a_tiny_runs_trees_and_prints_its_table_again(tmp_path):
    # Round 0's trees of a tiny run without the step check, so that some nodes are open and need completions.
    code, output = finish(iterate(["--rounds", "0", "--run-dir", "runs", *TINY, "--eval.pass_at_k", "0",
                                   "--policy_train.warm_start_steps", "40", "--search.max_simulations", "4",
                                   "--search.step_check", "false"], tmp_path))
    assert code == 0, output
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    out = tmp_path / "labels"
    result = subprocess.run([sys.executable, "-m", "experiments.label_quality", "--run", "runs/default", "--round",
                             "0", "--problems", "6", "--completions", "1", "--out", str(out)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    meta, rows = lines[0]["meta"], lines[1:]
    assert meta["problems"] == 6 and meta["search_tokens"] > 0
    names = {row["labelling"] for row in rows}
    assert names == {"tree_hard", "tree_quality", "tree_q", "mc_hard@1", "mc_soft@1", "omega@1"}
    assert meta["tokens"]["mc_soft@1"] > 0 and all(0 <= row["target"] <= 1 for row in rows)
    for name in ("tree_hard", "mc_soft@1"):  # both label every node of the six trees
        assert len([row for row in rows if row["labelling"] == name]) == sum(
            1 for row in rows if row["labelling"] == "tree_hard")
    again = subprocess.run([sys.executable, "-m", "experiments.label_quality", "--from-json",
                            str(out / "labels.jsonl")], env=env, capture_output=True, text=True, timeout=120)
    table = (out / "table.md").read_text()
    assert again.returncode == 0 and again.stdout == table and result.stdout.endswith(table)

    # The PRM one labelling trains, against the untrained start and the run's own as a verifier (scoring alone)
    result = subprocess.run([sys.executable, "-m", "experiments.label_prms", "--labels", str(out / "labels.jsonl"),
                             "--run", "runs/default", "--labellings", "omega@1", "--problems", "3",
                             "--budget-multiples", "2", "--prm-alone"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "scorer: the PRM alone (no step check)" in result.stdout
    prms = json.loads((out / "prms_prm_alone.json").read_text())
    assert list(prms["rows"]) == ["start", "run", "omega@1"]
    assert prms["examples"]["omega@1"] == sum(1 for row in rows if row["labelling"] == "omega@1")
    for name, evaluated in prms["rows"].items():
        assert {row["method"] for row in evaluated} == {"best_of_n_min", "best_of_n_last", "mcts"}, name
        assert all(row["problems"] == 3 and 0 <= row["accuracy"] <= 1 for row in evaluated), name
    start = tmp_path / "runs" / "default" / "round_00" / "init_prm" / "model.safetensors"
    assert (out / "prms" / "omega_at_1" / "model.safetensors").read_bytes() != start.read_bytes()
    again = subprocess.run([sys.executable, "-m", "experiments.label_prms", "--from-json",
                            str(out / "prms_prm_alone.json")], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == (out / "prms_prm_alone.md").read_text()


def test_a_labelling_becomes_the_prms_value_examples_and_its_table_shows_each_method(tmp_path):
    from experiments.label_prms import read_labels, table, value_examples
    from rest_mcts.config import ConfigError

    labels = tmp_path / "labels.jsonl"
    meta = {"run": "r", "round": 1, "problems": 2, "search_tokens": 1000, "tokens": {"omega@1": 500}}
    rows = [{"labelling": "tree_hard", "problem_id": "a", "steps": ["1\n"], "target": 1.0, "label": True},
            {"labelling": "omega@1", "problem_id": "b", "steps": ["1\n", "2\n"], "target": 0.0, "label": False}]
    labels.write_text("\n".join(json.dumps(line) for line in [{"meta": meta}, *rows]) + "\n")
    read_meta, by_labelling = read_labels(labels)
    assert read_meta == meta and list(by_labelling) == ["tree_hard", "omega@1"]
    examples = value_examples(by_labelling["omega@1"], {"b": ("Q b", None)})
    assert [(e.problem_id, e.prompt, e.steps, e.target, e.step_correct) for e in examples] == [
        ("b", "Q b", ("1\n", "2\n"), 0.0, False)]
    with pytest.raises(ConfigError, match="labels name problems the run's round did not search: b"):
        value_examples(by_labelling["omega@1"], {"a": ("Q a", None)})
    labels.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(ConfigError, match="a meta line first"):
        read_labels(labels)

    def row(method, accuracy):
        return {"method": method, "budget": 268, "accuracy": accuracy, "ci_low": 0.1, "ci_high": 0.9}

    text = table({"meta": meta, "examples": {"start": 0, "omega@1": 1},
                  "rows": {"start": [row("mcts", 0.5)], "omega@1": [row("best_of_n_min", 0.25), row("mcts", 0.75)]}})
    assert "| best_of_n_min @268 | best_of_n_last @268 | mcts @268 |" in text
    assert "| start | 0 | 0 | - | - | 0.500 (0.100-0.900) |" in text
    assert "| omega@1 | 1 | 500 | 0.250 (0.100-0.900) | - | 0.750 (0.100-0.900) |" in text
