"""The Best-of-N verifier study: its data from labelled samples, its table from raw files, its flag checks."""

from __future__ import annotations

import json

import pytest

from experiments.verifier_study import equal_token_comparison, main, split_table
from lm.data import Problem
from rest_mcts.verifier_data import verification_data


class WordTask:
    """The answer is the last step's word; 'right' is right."""

    @staticmethod
    def format_prompt(problem):
        return problem.question + "\n"

    @staticmethod
    def extract_answer(steps):
        word = steps[-1].strip() if steps else ""
        return word if word.isalpha() else None

    @staticmethod
    def check_answer(answer, oracle):
        return answer == oracle

    @staticmethod
    def verification_rationale(problem, steps):
        return "ok\n" if steps[-1].strip() == problem.answer else "no\n"


def solution(word, correct):
    return {"steps": ["s\n", f"{word}\n"], "correct": correct}


def test_verification_data_labels_every_distinct_solution_and_pairs_right_with_wrong():
    problems = {"p": Problem("p", "q", "right")}
    rows = [{"problem_id": "p", "tokens": 9, "solutions": [
        solution("right", True), solution("wrong", False), solution("right", True), solution("bad", False),
        solution("other", False)]}]
    examples, pairs, solutions = verification_data(WordTask(), problems, rows, max_pairs_per_problem=4)
    assert [(e.steps[-1], e.correct, e.rationale) for e in examples] == [
        ("right\n", True, "ok\n"), ("wrong\n", False, "no\n"), ("bad\n", False, "no\n"), ("other\n", False, "no\n")]
    assert [(p.chosen[-1], p.rejected[-1]) for p in pairs] == [("right\n", "wrong\n")]  # one distinct right one
    assert [s.steps[-1] for s in solutions] == ["right\n"]
    assert all(e.prompt == "q\n" for e in examples)


def test_pairs_per_problem_are_capped():
    problems = {"p": Problem("p", "q", "right")}
    right = [{"steps": ["s\n", f"{i}\n", "right\n"], "correct": True} for i in range(5)]
    wrong = [{"steps": ["s\n", f"{i}\n", "wrong\n"], "correct": False} for i in range(5)]
    rows = [{"problem_id": "p", "tokens": 1, "solutions": right + wrong}]
    _, pairs, _ = verification_data(WordTask(), problems, rows, max_pairs_per_problem=2)
    assert len(pairs) == 2


def sample_rows():
    """Two problems, wave 0 of 2 samples (the Best-of-N set) and wave 1 of 2 more."""
    return [
        {"problem_id": "a", "wave": 0, "requested": 2, "tokens": 10,
         "solutions": [solution("wrong", False), solution("right", True)]},
        {"problem_id": "b", "wave": 0, "requested": 2, "tokens": 20,
         "solutions": [solution("wrong", False), solution("wrong", False)]},
        {"problem_id": "a", "wave": 1, "requested": 2, "tokens": 10,
         "solutions": [solution("right", True), solution("right", True)]},
        {"problem_id": "b", "wave": 1, "requested": 2, "tokens": 20,
         "solutions": [solution("right", True), solution("right", True)]},
    ]


def test_split_table_computes_pass_at_n_consistency_best_of_n_and_auroc():
    problems = {"a": Problem("a", "qa", "right"), "b": Problem("b", "qb", "right")}
    scores = [
        {"problem_id": "a", "verifier": "v", "scores": [0.2, 0.9], "tokens": [1, 1]},
        {"problem_id": "b", "verifier": "v", "scores": [0.1, 0.3], "tokens": [1, 1]},
        {"problem_id": "a", "verifier": "cot", "checks": [[[0.9, 5], [0.1, 5]], [[0.8, 5], [0.8, 5]]]},
        {"problem_id": "b", "verifier": "cot", "checks": [[[0.5, 5], [0.5, 5]], [[0.4, 5], [0.4, 5]]]},
    ]
    rows = {row["method"]: row for row in split_table(WordTask(), problems, sample_rows(), scores, [1, 2])}
    assert rows["pass@2"]["accuracy"] == 0.5 and rows["pass@2"]["tokens"] == 15
    # Two samples: a ties 1-1 ("right" < "wrong" wins the tie), b all wrong; four samples: both right.
    assert rows["self_consistency@2"]["accuracy"] == 0.5
    assert rows["self_consistency@4"]["accuracy"] == 1.0 and rows["self_consistency@4"]["tokens"] == 30
    assert rows["best_of_2_v"]["accuracy"] == 0.5
    assert rows["best_of_2_v"]["tokens"] == 15 + 2
    assert rows["best_of_2_v"]["auroc"] == pytest.approx(1.0)  # the one right solution scores highest
    # K=1 reads each solution's first check: a's wrong one 0.9 beats its right one 0.8.
    assert rows["best_of_2_cot_k1"]["accuracy"] == 0.0
    assert rows["best_of_2_cot_k2"]["accuracy"] == 0.5  # means 0.5 and 0.8: the right one
    assert rows["best_of_2_cot_k2"]["tokens"] == 15 + 20
    equal_token_comparison(list(rows.values()))
    assert rows["best_of_2_cot_k2"]["self_consistency_at_equal_tokens"]["samples"] == 4
    assert rows["best_of_2_v"]["self_consistency_at_equal_tokens"]["samples"] == 2


def test_the_study_refuses_bad_flags_before_writing_anything(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out")]) == 2
    assert "--run" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(json.dumps({"task": {"name": "modtarget"}}))
    assert main(["--run", str(run), "--out", str(tmp_path / "out")]) == 2
    assert "no finished round" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cot_examples_say_no_where_their_check_finds_a_wrong_step_even_with_a_right_answer():
    from lm.data import VerificationExample
    from rest_mcts.verifier_data import cot_consistent

    examples = [VerificationExample("p", "q\n", ("a\n",), True, "1 ok\n2 no\n"),
                VerificationExample("p", "q\n", ("b\n",), True, "1 ok\n2 ok\n"),
                VerificationExample("p", "q\n", ("c\n",), False, "1 ok\n")]
    assert [e.correct for e in cot_consistent(examples)] == [False, True, False]


def test_cotnpot_rows_rank_only_the_kept_solutions_and_fall_back_to_all():
    problems = {"a": Problem("a", "qa", "right"), "b": Problem("b", "qb", "right")}
    scores = [{"problem_id": "a", "verifier": "v", "scores": [0.9, 0.2], "tokens": [0, 0]},
              {"problem_id": "b", "verifier": "v", "scores": [0.1, 0.3], "tokens": [0, 0]}]
    kept = {"a": [False, True], "b": [False, False]}
    rows = {row["method"]: row for row in split_table(WordTask(), problems, sample_rows(), scores, [1], kept)}
    assert rows["best_of_2_v"]["accuracy"] == 0.0  # the verifier prefers a's wrong solution
    assert rows["cotnpot+best_of_2_v"]["accuracy"] == 0.5  # the filter leaves a's right one; b keeps both
    assert rows["cotnpot+self_consistency@2"]["accuracy"] == 0.5


def test_step_examples_label_every_distinct_prefix_with_its_true_step_label():
    from lm.data import VerificationExample
    from rest_mcts.tasks import get_task
    from rest_mcts.verifier_data import step_examples

    task = get_task("last_letter")
    problem = task.problems("test", 1, seed=0)[0]
    right = tuple(task.reference_steps(problem))
    wrong = right[:-1] + ("zzz\n",)
    prompt = task.format_prompt(problem)
    examples = [VerificationExample(problem.id, prompt, right, True, ""),
                VerificationExample(problem.id, prompt, wrong, False, "")]
    prefixes = step_examples(task, {problem.id: problem}, examples)
    assert len(prefixes) == len(right) + 1  # the shared prefixes once, then the wrong last step
    assert all(p.correct for p in prefixes[:len(right)]) and not prefixes[-1].correct
    assert prefixes[-1].rationale == task.verification_rationale(problem, wrong)


def test_tree_rows_list_each_trees_graded_terminals():
    from rest_mcts.verifier_data import tree_rows
    from search.tree import Tree

    tree = Tree.new("p", "q\n")
    step = tree.add_child(0, "s\n")
    right = tree.add_child(step, "right\n", is_terminal=True)
    tree.add_child(step, "wrong\n", is_terminal=True)
    tree.add_child(0, "open\n")
    tree.nodes[right].answer_correct = True
    assert tree_rows([tree]) == [{"problem_id": "p", "solutions": [
        {"steps": ["s\n", "right\n"], "correct": True}, {"steps": ["s\n", "wrong\n"], "correct": False}]}]


def test_the_table_is_recomputed_from_the_study_folder_alone(tmp_path):
    from experiments.verifier_study import table_from_folder
    from lm.data import write_jsonl
    from rest_mcts.tasks import get_task

    task = get_task("last_letter")
    problems = task.problems("test", 2, seed=0)
    right = [task.reference_steps(p) for p in problems]
    write_jsonl(tmp_path / "samples_test.jsonl", [
        {"problem_id": p.id, "wave": 0, "requested": 2, "tokens": 10,
         "solutions": [{"steps": steps, "correct": True}, {"steps": steps[:-1] + ["zz\n"], "correct": False}]}
        for p, steps in zip(problems, right)])
    write_jsonl(tmp_path / "scores_test.jsonl", [
        {"problem_id": p.id, "verifier": "v", "scores": [0.9, 0.1], "tokens": [0, 0]} for p in problems])
    (tmp_path / "study.json").write_text(json.dumps({
        "task": "last_letter", "data_seed": 0, "train_problems": 3000, "rationale_counts": [1],
        "held_out": {"test": [p.id for p in problems]}}))
    rows = {row["method"]: row for row in table_from_folder(tmp_path)["test"]}
    assert rows["best_of_2_v"]["accuracy"] == 1.0 and rows["pass@2"]["accuracy"] == 1.0
    assert (tmp_path / "summary.json").exists() and (tmp_path / "table.md").exists()
