"""Tasks on real data files (`rest_mcts.tasks.data_task`, gsm8k, math, game24, jsonl): every shipped gold answer
parses, worked solutions grade right, MATH grading agrees with real labels, Game of 24 splits and solver, custom
JSONL files, and bad data refused with the file and line named, by the task and by the CLI, before any run folder
exists."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from rest_mcts.answers import game24_value, to_number
from rest_mcts.config import TaskConfig
from rest_mcts.math_answers import parses
from rest_mcts.problems import RunProblems
from rest_mcts.tasks import DataError, get_task
from rest_mcts.tasks.data_task import count_json_lines
from rest_mcts.tasks.game24 import Game24Task, solve

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SHIPPED = REPO / "rest_mcts" / "tasks" / "data"
GSM8K_TRAIN, GSM8K_TEST = 7473, 1319


@pytest.fixture(scope="module")
def shared_data() -> Path:
    """The public copies of the data sets (beside the repository); tests that compare against them skip without."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- GSM8K --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gsm8k():
    return get_task(TaskConfig(name="gsm8k", seed_problems=473, train_problems=GSM8K_TRAIN - 473,
                               test_problems=GSM8K_TEST))


def test_every_gsm8k_gold_answer_of_every_split_parses_as_a_number(gsm8k):
    splits = {split: gsm8k.problems(split, count, 0)
              for split, count in (("seed", 473), ("train", GSM8K_TRAIN - 473), ("test", GSM8K_TEST))}
    assert all(to_number(problem.answer) is not None for problems in splits.values() for problem in problems)
    seed_ids, train_ids = {p.id for p in splits["seed"]}, {p.id for p in splits["train"]}
    assert not seed_ids & train_ids
    assert seed_ids | train_ids == {f"train-{line:05d}" for line in range(1, GSM8K_TRAIN + 1)}
    assert [p.id for p in splits["test"]] == [f"test-{line:05d}" for line in range(1, GSM8K_TEST + 1)]


def test_gsm8k_golds_are_the_numbers_after_hashes_of_the_public_files(gsm8k, shared_data):
    def public_golds(name: str) -> list[Fraction]:
        return [Fraction(row["answer"].split("####")[-1].strip().replace(",", ""))
                for row in read_jsonl(shared_data / "gsm8k" / name)]

    assert [Fraction(p.answer) for p in gsm8k.problems("test", GSM8K_TEST, 0)] == public_golds("test.jsonl")
    train = {p.id: Fraction(p.answer) for split, count in (("seed", 473), ("train", GSM8K_TRAIN - 473))
             for p in gsm8k.problems(split, count, 0)}
    assert [train[f"train-{line:05d}"] for line in range(1, GSM8K_TRAIN + 1)] == public_golds("train.jsonl")


def test_known_gsm8k_gold_answers(gsm8k):
    test = gsm8k.problems("test", 3, 0)
    assert test[0].question.startswith("Janet’s ducks lay 16 eggs per day") and test[0].answer == "18"
    assert [p.answer for p in test] == ["18", "3", "70000"]
    natalia = next(p for p in gsm8k.problems("train", GSM8K_TRAIN - 473, 0) + gsm8k.problems("seed", 473, 0)
                   if p.id == "train-00001")
    assert natalia.question.startswith("Natalia sold clips") and natalia.answer == "72"


def test_every_gsm8k_worked_solution_is_steps_without_calculator_notes_graded_right(gsm8k):
    rows = [row for split in ("seed", "train", "test") for row in gsm8k.split_rows(split, 0)]
    assert len(rows) == GSM8K_TRAIN + GSM8K_TEST
    assert sum("<<" in row.solution for row in rows) > 8000  # the raw solutions do hold calculator notes
    for row in rows:
        steps = gsm8k.solution_steps(row)
        assert all(step.endswith("\n") and step.strip() for step in steps), row.problem.id
        assert not any("<<" in step or ">>" in step for step in steps), row.problem.id
        assert steps[-1].startswith("#### ") and to_number(steps[-1][5:]) == Fraction(row.problem.answer)
        assert gsm8k.is_final_step(steps[-1])
        assert gsm8k.is_correct(row.problem, steps), row.problem.id


def test_gsm8k_seed_examples_and_reference_steps_are_the_worked_solutions(gsm8k):
    examples = gsm8k.seed_examples(20, 0)
    seed = gsm8k.problems("seed", 20, 0)
    assert [example.problem_id for example in examples] == [p.id for p in seed]
    for example, problem in zip(examples, seed):
        assert example.prompt.rstrip().endswith("Answer:") and problem.question in example.prompt
        assert all(step.endswith("\n") for step in example.steps)
        assert example.steps[-1] == f"#### {example.steps[-1][5:].strip()}\n"
        assert list(example.steps) == gsm8k.reference_steps(problem)
        assert gsm8k.is_correct(problem, example.steps)
    natalia = next(p for p in gsm8k.problems("train", GSM8K_TRAIN - 473, 0) if p.id == "train-00001")
    assert gsm8k.reference_steps(natalia) == ["Natalia sold 48/2 = 24 clips in May.\n",
                                              "Natalia sold 48+24 = 72 clips altogether in April and May.\n",
                                              "#### 72\n"]


def test_a_wrong_final_number_is_graded_wrong(gsm8k):
    problem = gsm8k.problems("test", 1, 0)[0]
    assert not gsm8k.is_correct(problem, ["16 - 3 - 4 = 9 eggs.\n", "#### 19\n"])
    assert not gsm8k.is_correct(problem, [])


# --- MATH: grading agrees with real labels ------------------------------------------------------------------

KNOWN_MATH_DISAGREEMENTS = {
    (72, 7): "\\boxed{10000} is 10{,}000: equivalent, but the data set labels it wrong",
}
"""(idx, response) pairs where `MathTask.extract_answer` + `check_answer` differ from the data set's `score`."""


def math_disagreements(task, rows, golds) -> dict[tuple[int, int], tuple[str, str | None, bool]]:
    found = {}
    for row, gold in zip(rows, golds):
        for position, (response, label) in enumerate(zip(row["code"], row["score"])):
            answer = task.extract_answer([response])
            if task.check_answer(answer, gold) != label:
                found[(row["idx"], position)] = (gold, answer, label)
    return found


def test_math_grading_agrees_with_the_labels_of_800_real_responses(shared_data):
    rows = read_jsonl(shared_data / "math" / "math_cot_100.jsonl")
    assert len(rows) == 100 and all(len(row["code"]) == len(row["score"]) == 8 for row in rows)
    task = get_task(TaskConfig(name="math"))
    found = math_disagreements(task, rows, [row["gt"] for row in rows])
    assert set(found) == set(KNOWN_MATH_DISAGREEMENTS), found
    assert found[(72, 7)] == ("10{,}000", "10000", False)
    # the two responses that state their box, then degenerate into random tokens holding '######': the box counts
    by_idx = {row["idx"]: row for row in rows}
    for idx, position, boxed in ((25, 1, "25"), (45, 5, "36")):
        response = by_idx[idx]["code"][position]
        assert "######" in response.split(f"\\boxed{{{boxed}}}")[-1]
        assert task.extract_answer([response]) == boxed and task.check_answer(boxed, by_idx[idx]["gt"])


def test_the_shipped_math_test_split_parses_and_grades_like_the_labels():
    task = get_task(TaskConfig(name="math"))
    problems = task.problems("test", 100, 0)
    rows = read_jsonl(SHIPPED / "math" / "math_cot_100.jsonl")
    assert [p.question for p in problems] == [row["question"] for row in rows]
    assert all(parses(p.answer) for p in problems)
    assert problems[3].answer == "\\text{4:30 p.m.}"  # the `answer` field, not `gt` ("4:30p..")
    found = math_disagreements(task, rows, [p.answer for p in problems])
    assert set(found) == set(KNOWN_MATH_DISAGREEMENTS), found


def test_math_worked_solutions_are_paragraphs_ending_in_the_boxed_answer():
    task = get_task(TaskConfig(name="math"))
    problem = task.problems("test", 1, 0)[0]
    row = task.split_rows("test", 0)[0]
    steps = task.solution_steps(row)
    assert all(step.endswith("\n\n") for step in steps)
    assert task.is_correct(problem, steps) and problem.answer == "420"
    assert task.is_correct(problem, ["So the product is about 420.\n\n", "The answer is $\\boxed{420}$.\n\n"])
    assert not task.is_correct(problem, ["It is \\boxed{419}.\n\n"])
    # Without a stated answer, the last number (as Qwen2.5-Math's evaluation reads MATH output).
    assert task.is_correct(problem, ["It is 420.\n\n"])
    assert not task.is_correct(problem, ["It is 420, or 419.\n\n"])
    assert task.is_correct(problem, ["Final Answer: $420$\n\n"])


def test_math_has_no_shipped_training_problems():
    with pytest.raises(DataError, match="--task.data_path"):
        get_task(TaskConfig(name="math")).problems("train", 1, 0)


def test_math_worked_solutions_state_their_box_first(tmp_path):
    """MATH's order: the box, then "the answer is", then `####`; a stray `######` is no marker at all."""
    task = get_task(TaskConfig(name="math"))
    problem = task.problems("test", 1, 0)[0]
    assert task.extract_answer(["It is \\boxed{420}.\n\n", "random tokens ###### ## ####### 7\n\n"]) == "420"
    assert task.extract_answer(["The answer is $\\boxed{420}$.\n\n", "#### 419\n\n"]) == "420"
    assert task.extract_answer(["\\boxed{420}\n\n", "Note: the answer is rounded from 419.6\n\n"]) == "420"
    assert task.extract_answer(["The answer is 420.\n\n", "#### 419\n\n"]) == "420"
    assert task.extract_answer(["So we get ######\n\n"]) is None
    assert task.is_correct(problem, ["It is \\boxed{420}.\n\n", "###### ##\n\n"])
    assert not task.is_final_step("###### ##\n\n") and task.is_final_step("#### 420\n\n")
    # numeric tasks keep GSM8K's order: `####` first
    gsm8k = get_task("gsm8k")
    assert gsm8k.extract_answer(["\\boxed{420}\n", "#### 419\n"]) == "419"
    assert gsm8k.extract_answer(["The answer is 420.\n", "#### 419\n"]) == "419"


def write_math_train(path: Path) -> Path:
    """MATH's train layout: `problem`, `solution` (the answer is its box), no `answer` field."""
    path.write_text("".join(json.dumps({"problem": f"What is {n} + {n}?", "solution": f"Add.\n\nIt is "
                                        f"$\\boxed{{{2 * n}}}$.", "level": "Level 1"}) + "\n" for n in range(4)))
    return path


def test_math_training_data_without_an_answer_field_takes_the_box_of_the_solution(tmp_path):
    path = write_math_train(tmp_path / "math_train.jsonl")
    task = get_task(TaskConfig(name="math", data_path=str(path), question_field="problem", answer_field="none",
                               solution_field="solution", seed_problems=2, train_problems=2, test_problems=0))
    seed, train = task.problems("seed", 2, 0), task.problems("train", 2, 0)
    assert sorted(p.answer for p in train + seed) == ["0", "2", "4", "6"]
    assert {p.id for p in seed + train} == {f"train-{line:05d}" for line in range(1, 5)}
    for problem in seed + train:
        n = int(problem.question.split()[2])
        assert problem.answer == str(2 * n)
        assert task.is_correct(problem, [f"It is $\\boxed{{{2 * n}}}$."])
    assert [example.steps[-1] for example in task.seed_examples(2, 0)] == [
        f"It is $\\boxed{{{p.answer}}}$.\n\n" for p in seed]
    # the same by the CLI flags MATH's train files need (the CLI holds at least one test problem out)
    flagged = task_from_flags("--task", "math", "--task.data_path", str(path), "--task.question_field", "problem",
                              "--task.answer_field", "none", "--task.solution_field", "solution",
                              "--task.seed_problems", "1", "--task.train_problems", "2", "--task.test_problems", "1",
                              "--eval.dev_problems", "1", "--task.problems_per_round", "1")
    assert flagged.answer_field == "" and flagged.solution_field == "solution"
    splits = [flagged.problems(split, count, 0) for split, count in (("test", 1), ("seed", 1), ("train", 2))]
    by_id = {p.id: p for split in splits for p in split}
    assert by_id == {p.id: p for p in seed + train}


def test_math_answer_field_empty_means_the_tasks_own_and_none_needs_a_stated_answer(tmp_path):
    path = write_math_train(tmp_path / "math_train.jsonl")
    task = get_task(TaskConfig(name="math", data_path=str(path), question_field="problem", answer_field="",
                               solution_field="solution", test_problems=0))
    with pytest.raises(DataError, match=f"{path}:1: no field 'answer'"):
        task.problems("train", 1, 0)
    path.write_text(json.dumps({"problem": "q", "solution": "It is 4."}) + "\n")
    task = get_task(TaskConfig(name="math", data_path=str(path), question_field="problem", answer_field="none",
                               test_problems=0, seed_problems=0))
    with pytest.raises(DataError, match=f"{path}:1: the solution states no final answer"):
        task.problems("train", 1, 0)
    task = get_task(TaskConfig(name="math", data_path=str(path), question_field="problem", answer_field="none",
                               solution_field="", test_problems=0, seed_problems=0))
    assert task.solution_field == "solution"  # empty: the task's own solution field


# --- Game of 24 ---------------------------------------------------------------------------------------------

HAND_SOLUTIONS = {
    "1 1 4 6": "4 * 6 / 1 / 1",
    "1 1 11 11": "11 + 11 + 1 + 1",
    "1 1 3 8": "8 * 3 / (1 * 1)",
    "1 1 1 8": "(1 + 1 + 1) * 8",
    "6 6 6 6": "6 * 6 - 6 - 6",
    "1 1 2 12": "(2 - 1 + 1) * 12",
    "1 2 2 6": "(2 + 2) * 6 * 1",
    "1 1 10 12": "12 + 10 + 1 + 1",
    "2 2 10 10": "10 + 10 + 2 + 2",
    "1 1 1 12": "(1 + 1) * 12 * 1",
    "1 1 2 8": "(2 + 1) * 8 * 1",
    "1 1 4 8": "(4 - 1) * 8 * 1",
    "1 1 5 8": "(5 - 1 - 1) * 8",
    "4 6 11 11": "4 * 6 * 11 / 11",
    "1 1 3 12": "(3 - 1) * 12 * 1",
    "2 2 2 12": "12 * 2 - 2 + 2",
    "1 1 4 12": "(4 - 1 - 1) * 12",
    "1 1 12 12": "12 + 12 * 1 * 1",
    "3 3 3 8": "3 * 8 + 3 - 3",
    "1 1 2 6": "(1 + 1 + 2) * 6",
}
"""A solution of each of the first 20 puzzles of 24.csv, written and checked by hand."""


def puzzles_of(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [row["Puzzles"] for row in csv.DictReader(handle)]


@pytest.fixture(params=["shipped", "shared"])
def game24_csv(request) -> Path:
    if request.param == "shared":
        if not SHARED.is_dir():
            pytest.skip(f"{SHARED} not present")
        return SHARED / "game24" / "24.csv"
    return SHIPPED / "game24" / "24.csv"


def test_solve_finds_a_solution_the_checker_accepts_for_the_first_20_puzzles(game24_csv):
    task = get_task(TaskConfig(name="game24", data_path=str(game24_csv), seed_problems=100, train_problems=800))
    puzzles = puzzles_of(game24_csv)[:20]
    assert puzzles == list(HAND_SOLUTIONS)
    problems = {p.question: p for split in ("seed", "train") for p in task.problems(split, 100 if split == "seed"
                                                                                        else 800, 0)}
    for puzzle in puzzles:
        numbers = [int(n) for n in puzzle.split()]
        steps = solve(numbers)
        assert steps is not None and len(steps) == 4 and all(step.endswith("\n") for step in steps)
        assert steps[-1].startswith("Answer: ") and steps[-1].rstrip().endswith("= 24")
        expression = task.extract_answer(steps)
        assert game24_value(expression, numbers) and task.check_answer(expression, puzzle)
        assert task.is_correct(problems[puzzle], steps)
        assert task.reference_steps(problems[puzzle]) == steps


@pytest.mark.parametrize("puzzle, expression", HAND_SOLUTIONS.items())
def test_hand_written_solutions_of_the_first_20_puzzles_are_accepted(puzzle, expression):
    assert game24_value(expression, [int(n) for n in puzzle.split()])
    assert Game24Task().check_answer(expression, puzzle)
    assert Game24Task().check_answer(f"{expression} = 24", puzzle)


def test_the_game24_checker_reads_exact_fractions_and_rejects_wrong_answers():
    task = Game24Task()
    assert task.check_answer("8 / (3 - 8 / 3)", "3 3 8 8")
    assert solve([3, 3, 8, 8]) is not None and task.check_answer(task.extract_answer(solve([3, 3, 8, 8])), "3 3 8 8")
    assert not task.check_answer("(1 + 1) * (6 * 4)", "1 1 4 6")  # 48
    assert not task.check_answer("4 * 6 / (1 - 1)", "1 1 4 6")
    assert not task.check_answer(None, "1 1 4 6")
    assert not task.is_correct(task.problems("test", 1, 0)[0], ["1 + 1 = 2 (left: 2 ...)\n"])  # no answer line


def test_solve_says_when_a_puzzle_has_no_solution():
    assert solve([1, 1, 1, 1]) is None
    assert solve([1, 1, 1, 2]) is None


def test_game24_splits_follow_tree_of_thoughts(game24_csv):
    task = get_task(TaskConfig(name="game24", data_path=str(game24_csv), seed_problems=100, train_problems=800))
    puzzles = puzzles_of(game24_csv)
    assert len(puzzles) == 1362
    test, ood = task.problems("test", 100, 0), task.problems("ood", 362, 0)
    assert [p.question for p in test] == puzzles[900:1000]
    assert [p.id for p in test] == [f"train-{rank:04d}" for rank in range(901, 1001)]  # ranks of the one CSV
    assert [p.question for p in ood] == puzzles[1000:]
    assert ood[0].id == "train-1001" and ood[-1].id == "train-1362"
    seed, train = task.problems("seed", 100, 0), task.problems("train", 800, 0)
    seed_ids, train_ids = {p.id for p in seed}, {p.id for p in train}
    assert len(seed_ids) == 100 and len(train_ids) == 800 and not seed_ids & train_ids
    assert seed_ids | train_ids == {f"train-{rank:04d}" for rank in range(1, 901)}
    assert all(problem.answer == problem.question for problem in test + seed)
    other = task.problems("seed", 100, 1)
    assert {p.id for p in other} != seed_ids  # the shuffle follows the seed; the held-out splits do not
    assert task.problems("test", 100, 1) == test


def test_game24_test_and_ood_files_of_their_own_replace_the_rank_slices(tmp_path):
    test_file = tmp_path / "24.csv"  # the same name as the training file, in another folder
    test_file.write_text("Rank,Puzzles\n1,1 1 4 6\n\n2,3 3 8 8\n3,1 2 2 6\n", encoding="utf-8")
    ood_file = tmp_path / "hard.csv"
    ood_file.write_text("Rank,Puzzles\n1,6 6 6 6\n", encoding="utf-8")
    shipped = SHIPPED / "game24" / "24.csv"
    puzzles = puzzles_of(shipped)
    task = get_task(TaskConfig(name="game24", test_path=str(test_file), seed_problems=100, train_problems=800))
    test = task.problems("test", 3, 0)
    assert [(p.id, p.question) for p in test] == [("test-0001", "1 1 4 6"), ("test-0002", "3 3 8 8"),
                                                  ("test-0003", "1 2 2 6")]
    assert all(task.is_correct(p, solve([int(n) for n in p.question.split()])) for p in test)
    ood = task.problems("ood", 362, 0)  # no ood file: still the ranks after 1000 of the training CSV
    assert [p.question for p in ood] == puzzles[1000:] and ood[0].id == "train-1001"
    seed, train = task.problems("seed", 100, 0), task.problems("train", 800, 0)
    assert {p.id for p in seed + train} == {f"train-{rank:04d}" for rank in range(1, 901)}  # unchanged
    assert not {p.id for p in test} & {p.id for p in seed + train + ood}
    with pytest.raises(DataError, match="--task.test_problems 4: the game24 test split holds 3 problems"):
        task.problems("test", 4, 0)
    both = get_task(TaskConfig(name="game24", test_path=str(test_file), ood_path=str(ood_file), seed_problems=100))
    assert [(p.id, p.question) for p in both.problems("ood", 1, 0)] == [("ood-0001", "6 6 6 6")]
    assert both.problems("test", 3, 0) == test
    bad = tmp_path / "bad.csv"
    bad.write_text("Rank,Puzzles\n1,1 1 4\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{bad}:2: Puzzles '1 1 4'"):
        get_task(TaskConfig(name="game24", test_path=str(bad))).problems("test", 1, 0)


# --- the generic JSONL task ---------------------------------------------------------------------------------


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def task_from_flags(*flags: str):
    """The task the CLI flags configure (parsed and validated as `python -m rest_mcts.iterate` does)."""
    from rest_mcts.flags import config_from_args
    from rest_mcts.iterate import build_parser

    config = config_from_args(build_parser().parse_args([*flags, "--model.policy_model", "unused"]))
    return get_task(config.task)


@pytest.fixture
def numbers_file(tmp_path) -> Path:
    """30 questions with custom field names; answers as JSON numbers and as text."""
    return write_jsonl(tmp_path / "sums.jsonl", [
        {"q": f"What is {n} + {n}?", "a": 2 * n if n % 2 else f"{2 * n:,}", "note": "x"} for n in range(1, 31)])


def test_jsonl_reads_custom_fields_and_holds_the_test_split_out_of_the_data_file(numbers_file):
    task = task_from_flags("--task", "jsonl", "--task.data_path", str(numbers_file), "--task.question_field", "q",
                           "--task.answer_field", "a", "--task.test_problems", "5", "--task.seed_problems", "5",
                           "--task.train_problems", "20", "--eval.dev_problems", "2", "--task.problems_per_round", "4")
    test, seed, train = task.problems("test", 5, 0), task.problems("seed", 5, 0), task.problems("train", 20, 0)
    ids = [{p.id for p in split} for split in (test, seed, train)]
    assert [len(split) for split in ids] == [5, 5, 20]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert ids[0] | ids[1] | ids[2] == {f"train-{line:05d}" for line in range(1, 31)}  # all held out of one file
    for problem in test + seed + train:
        n = int(problem.question.split()[2])
        assert Fraction(problem.answer) == 2 * n
        assert task.is_correct(problem, [f"{n} + {n} = {2 * n}.\n", f"#### {2 * n}\n"])
        assert not task.is_correct(problem, [f"#### {2 * n + 1}\n"])
    assert task.problems("test", 5, 0) == test and task.problems("test", 3, 0) == test[:3]
    assert task.seed_examples(5, 0) == []  # no solution field: no warm start
    again = task_from_flags("--task", "jsonl", "--task.data_path", str(numbers_file), "--task.question_field", "q",
                            "--task.answer_field", "a", "--task.test_problems", "5", "--task.data_seed", "1",
                            "--task.train_problems", "20", "--eval.dev_problems", "2",
                            "--task.problems_per_round", "4")
    assert {p.id for p in again.problems("test", 5, 1)} != ids[0]


def test_jsonl_with_a_test_file_keeps_the_whole_data_file_for_seed_and_train(numbers_file, tmp_path):
    test_file = write_jsonl(tmp_path / "held_out.jsonl", [{"q": f"What is {n} + 1?", "a": n + 1} for n in range(7)])
    task = get_task(TaskConfig(name="jsonl", data_path=str(numbers_file), test_path=str(test_file),
                               question_field="q", answer_field="a", seed_problems=10, test_problems=3))
    test = task.problems("test", 7, 0)
    assert [p.id for p in test] == [f"test-{line:05d}" for line in range(1, 8)]  # file order
    assert [p.answer for p in test] == [str(n + 1) for n in range(7)]
    seed, train = task.problems("seed", 10, 0), task.problems("train", 20, 0)
    assert {p.id for p in seed} | {p.id for p in train} == {f"train-{line:05d}" for line in range(1, 31)}
    assert task.problems("ood", 0, 0) == []


def test_jsonl_math_answers_are_graded_by_equivalence(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", [{"question": f"Half of {n}?", "answer": f"\\frac{{{n}}}{{2}}"}
                                                 for n in range(1, 11)])
    task = get_task(TaskConfig(name="jsonl", data_path=str(path), answer_format="math", test_problems=2,
                               seed_problems=0))
    assert task.step_delimiter == "\n\n"
    problem = next(p for p in task.problems("train", 8, 0) + task.problems("test", 2, 0)
                   if p.question == "Half of 3?")
    assert problem.answer == "\\frac{3}{2}"
    assert task.is_correct(problem, ["Halve it.\n\n", "The answer is $\\boxed{1.5}$.\n\n"])
    assert task.is_correct(problem, ["\\boxed{3/2}"])
    assert not task.is_correct(problem, ["\\boxed{\\frac{2}{3}}"])
    assert not task.is_correct(problem, ["It is 1.5."])  # no strict format


def test_jsonl_text_answers_compare_as_normalised_text(tmp_path):
    path = write_jsonl(tmp_path / "capitals.jsonl", [
        {"question": "Capital of France?", "answer": "Paris"},
        {"question": "Capital of Japan?", "answer": "The answer is Tokyo."},
        {"question": "Capital of Peru?", "answer": "Lima"}])
    task = get_task(TaskConfig(name="jsonl", data_path=str(path), answer_format="text", test_problems=0,
                               seed_problems=0))
    problems = {p.question: p for p in task.problems("train", 3, 0)}
    france, japan = problems["Capital of France?"], problems["Capital of Japan?"]
    assert japan.answer == "Tokyo"
    assert task.is_correct(france, ["The answer is  PARIS."])
    assert task.is_correct(japan, ["#### tokyo"])
    assert not task.is_correct(france, ["#### Lyon"])
    assert not task.is_correct(france, ["Paris"])  # no strict format: text answers have no fallback


def test_jsonl_worked_solutions_become_steps_with_a_final_answer_line(tmp_path):
    path = write_jsonl(tmp_path / "worked.jsonl", [
        {"question": "2 + 3?", "answer": 5, "solution": "2 + 3 = 5"},
        {"question": "4 + 4?", "answer": 8, "solution": "4 + 4 = 8\n#### 8"}])
    task = get_task(TaskConfig(name="jsonl", data_path=str(path), solution_field="solution", seed_problems=2,
                               test_problems=0))
    steps = {example.prompt.split("Question: ")[-1].split("\n")[0]: example.steps
             for example in task.seed_examples(2, 0)}
    assert steps["2 + 3?"] == ("2 + 3 = 5\n", "The answer is 5.\n")
    assert steps["4 + 4?"] == ("4 + 4 = 8\n", "#### 8\n")


def test_problem_ids_are_unique_across_splits_read_from_two_files(tmp_path):
    """Ids are `<role>-<line>`, the role being what the file is to the task: files of one name never collide."""
    for folder in ("train", "test", "ood"):
        (tmp_path / folder).mkdir()
    data = write_jsonl(tmp_path / "train" / "data.jsonl", [{"question": f"q{n}", "answer": n} for n in range(4)])
    test = write_jsonl(tmp_path / "test" / "data.jsonl", [{"question": f"t{n}", "answer": n} for n in range(2)])
    ood = write_jsonl(tmp_path / "ood" / "data.jsonl", [{"question": f"o{n}", "answer": n} for n in range(3)])
    task = get_task(TaskConfig(name="jsonl", data_path=str(data), test_path=str(test), ood_path=str(ood),
                               seed_problems=0))
    test_ids = [p.id for p in task.problems("test", 2, 0)]
    train_ids = {p.id for p in task.problems("train", 4, 0)}
    ood_ids = [p.id for p in task.problems("ood", 3, 0)]
    assert test_ids == ["test-00001", "test-00002"] and ood_ids == ["ood-00001", "ood-00002", "ood-00003"]
    assert train_ids == {f"train-{line:05d}" for line in range(1, 5)}
    assert [p.question for p in task.problems("ood", 3, 0)] == ["o0", "o1", "o2"]
    gsm8k_test = write_jsonl(tmp_path / "ood" / "test.jsonl", [{"question": "t0", "answer": "1 + 1 = 2\n#### 2"}])
    gsm8k = get_task(TaskConfig(name="gsm8k", test_path=str(gsm8k_test)))  # replaces the shipped test file
    assert [(p.id, p.question, p.answer) for p in gsm8k.problems("test", 1, 0)] == [("test-00001", "t0", "2")]
    assert gsm8k.problems("seed", 1, 0)[0].id.startswith("train-")


# --- bad data -----------------------------------------------------------------------------------------------

GOOD = b'{"question": "What is 1 + 1?", "answer": "2"}\n'

BAD_JSONL = [
    pytest.param(GOOD * 2 + b'{"question": "q", \n', "number", 3, "not valid JSON", id="malformed JSON on line 3"),
    pytest.param(GOOD + b"[1, 2]\n", "number", 2, "a JSON list", id="a JSON list"),
    pytest.param(GOOD + b'{"answer": "2"}\n', "number", 2, "no field 'question'", id="missing question"),
    pytest.param(GOOD + b'{"question": "q", "answer": [2]}\n', "number", 2, "field 'answer' is list",
                 id="answer a list"),
    pytest.param(GOOD + b'{"question": "q", "answer": true}\n', "number", 2, "field 'answer' is bool",
                 id="answer a bool"),
    pytest.param(GOOD + b'{"question": "q", "answer": null}\n', "number", 2, "field 'answer' is NoneType",
                 id="answer null"),
    pytest.param(GOOD + b'{"question": 7, "answer": "2"}\n', "number", 2, "field 'question' is int",
                 id="question a number"),
    pytest.param(GOOD + b'{"question": "  ", "answer": "2"}\n', "number", 2, "field 'question' is empty",
                 id="question empty"),
    pytest.param(b"", "number", None, "empty", id="empty file"),
    pytest.param(b"\n   \n\n", "number", None, "empty", id="only blank lines"),
    pytest.param(GOOD + b'{"question": "caf\xe9", "answer": "2"}\n', "number", 2, "not UTF-8", id="latin-1 line 2"),
    pytest.param(GOOD + b'{"question": "q", "answer": "abc"}\n', "number", 2, "is not a number",
                 id="numeric gold abc"),
    pytest.param(GOOD + b'{"question": "q", "answer": NaN}\n', "number", 2, "is not a number", id="numeric gold NaN"),
    pytest.param(GOOD + b'{"question": "q", "answer": "\\\\frac{"}\n', "math", 2, "does not parse as math",
                 id="math gold unbalanced"),
    pytest.param(GOOD + b'{"question": "q", "answer": " "}\n', "text", 2, "field 'answer' is empty",
                 id="text gold empty"),
]


@pytest.mark.parametrize("content, answer_format, line, message", BAD_JSONL)
def test_bad_jsonl_data_raises_data_error_naming_file_and_line(tmp_path, content, answer_format, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    task = get_task(TaskConfig(name="jsonl", data_path=str(path), answer_format=answer_format, test_problems=0,
                               seed_problems=0))
    with pytest.raises(DataError, match=message) as error:
        task.problems("train", 1, 0)
    assert isinstance(error.value, ValueError)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(error.value).startswith(where)


def test_a_missing_data_file_is_named(tmp_path):
    for name in ("jsonl", "gsm8k", "game24"):
        task = get_task(TaskConfig(name=name, data_path=str(tmp_path / "nowhere.jsonl"), seed_problems=0))
        with pytest.raises(DataError, match=f"{tmp_path / 'nowhere.jsonl'}: no such file"):
            task.problems("train", 1, 0)
    task = get_task(TaskConfig(name="gsm8k", test_path=str(tmp_path / "no_test.jsonl")))
    with pytest.raises(DataError, match="no_test.jsonl: no such file"):
        task.problems("test", 1, 0)


@pytest.mark.parametrize("content, line, message", [
    pytest.param("Rank,Puzzles\n1,1 1 4 6\n2,1 1 x 6\n", 3, "expected four integers", id="a letter"),
    pytest.param("Rank,Puzzles\n1,1 1 4 6\n2,1 4 6\n", 3, "expected four integers", id="three numbers"),
    pytest.param("Rank,Puzzles\n1,1 1 4 6\n2,1 -1 4 6\n", 3, "expected four integers", id="a negative number"),
    pytest.param("Rank,Numbers\n1,1 1 4 6\n", 1, "no Puzzles column", id="no Puzzles column"),
    pytest.param("", 1, "no Puzzles column", id="empty file"),
    pytest.param("Rank,Puzzles\n", None, "empty", id="header only"),
    pytest.param("Rank,Puzzles\n1,1 1 4 6\n\n3,1 1 x 6\n", 4, "expected four integers", id="after a blank line"),
    pytest.param("Rank,Puzzles\n1,1 1 4 6\n\n\n\n2,1 1 x 6\n", 6, "expected four integers",
                 id="after three blank lines"),
    pytest.param('Rank,Puzzles\n"1\n",1 1 4 6\n2,1 1 x 6\n', 4, "expected four integers",
                 id="after a quoted field spanning two lines"),
    pytest.param("Rank,Puzzles\n1,1 1 4 \u00b2\n", 2, "expected four integers", id="a superscript digit"),
    pytest.param("Rank,Puzzles\n1,1 1 4 \u0666\n", 2, "expected four integers", id="an Arabic-Indic digit"),
    pytest.param("Rank,Puzzles\n1,1 1 4 \uff16\n", 2, "expected four integers", id="a full-width digit"),
])
def test_bad_game24_csv_raises_data_error_naming_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad24.csv"
    path.write_text(content, encoding="utf-8")
    task = get_task(TaskConfig(name="game24", data_path=str(path), seed_problems=0))
    with pytest.raises(DataError, match=message) as error:
        task.problems("train", 1, 0)
    assert str(error.value).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_a_jsonl_task_without_a_data_file_says_which_flag_to_give():
    with pytest.raises(DataError, match="--task.data_path"):
        get_task("jsonl").problems("train", 1, 0)


# --- split sizes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, split, count, flag, holds", [
    ("gsm8k", {}, "test", 5000, "--task.test_problems 5000", GSM8K_TEST),
    ("gsm8k", {"seed_problems": 1000}, "train", 7000, "--task.train_problems 7000", GSM8K_TRAIN - 1000),
    ("gsm8k", {}, "seed", 8000, "--task.seed_problems 8000", GSM8K_TRAIN),
    ("gsm8k", {}, "train", 3000, "--task.train_problems 3000", 0),  # the default seed split takes the whole file
    ("math", {}, "test", 101, "--task.test_problems 101", 100),
    ("game24", {}, "test", 101, "--task.test_problems 101", 100),
    ("game24", {}, "ood", 400, "--task.ood_problems 400", 362),
])
def test_a_split_larger_than_its_data_names_the_flag(name, options, split, count, flag, holds):
    task = get_task(TaskConfig(name=name, **options))
    with pytest.raises(DataError, match=f"{flag}: the {name} {split} split holds {holds} problems"):
        task.problems(split, count, 0)


def test_a_held_out_test_split_larger_than_the_data_file_names_the_flag(numbers_file):
    task = get_task(TaskConfig(name="jsonl", data_path=str(numbers_file), question_field="q", answer_field="a",
                               test_problems=40))
    with pytest.raises(DataError, match="--task.test_problems 40: the jsonl test split holds 30 problems"):
        task.problems("test", 40, 0)


# --- files as users write them: a byte-order mark, CRLF line ends ----------------------------------------------


SUMS = [{"question": f"What is {n} plus {n}?", "answer": str(2 * n)} for n in range(40)]


@pytest.mark.parametrize("mark, newline", [(b"\xef\xbb\xbf", "\n"), (b"", "\r\n"), (b"\xef\xbb\xbf", "\r\n")],
                         ids=["byte-order-mark", "crlf", "both"])
def test_a_jsonl_file_with_a_byte_order_mark_or_crlf_line_ends_reads_as_the_plain_file(tmp_path, mark, newline):
    plain = write_jsonl(tmp_path / "plain.jsonl", SUMS)
    written = tmp_path / "written.jsonl"
    written.write_bytes(mark + "".join(json.dumps(row) + newline for row in SUMS).encode() + newline.encode())

    def splits(path: Path) -> list:
        task = get_task(TaskConfig(name="jsonl", data_path=str(path), seed_problems=0, test_problems=4))
        return [task.problems(split, count, 0) for split, count in (("test", 4), ("train", 36))]

    assert splits(written) == splits(plain)
    assert count_json_lines(written) == count_json_lines(plain) == len(SUMS)


def test_a_game24_csv_with_a_byte_order_mark_and_crlf_line_ends_reads_as_the_shipped_one(tmp_path):
    shipped = SHIPPED / "game24" / "24.csv"
    written = tmp_path / "24.csv"
    written.write_bytes(b"\xef\xbb\xbf" + shipped.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    def splits(path: Path) -> list:
        task = get_task(TaskConfig(name="game24", data_path=str(path), seed_problems=100, train_problems=800))
        return [task.problems(split, count, 0) for split, count in (("seed", 100), ("train", 800), ("test", 100),
                                                                     ("ood", 362))]

    assert splits(written) == splits(shipped)
    puzzles_first = tmp_path / "puzzles.csv"  # the mark sits on the Puzzles column's name itself
    puzzles_first.write_bytes(b"\xef\xbb\xbfPuzzles,Rank\r\n1 1 4 6,1\r\n1 1 11 11,2\r\n")
    task = get_task(TaskConfig(name="game24", data_path=str(puzzles_first), seed_problems=0))
    assert sorted(p.question for p in task.problems("train", 2, 0)) == ["1 1 11 11", "1 1 4 6"]


# --- split sizes from the files ----------------------------------------------------------------------------------


def sized(*flags: str) -> tuple[int, ...]:
    """(seed, train, per round, test, ood, dev) of the configuration the CLI flags give."""
    config = cli_config(*flags)
    task = config.task
    return (task.seed_problems, task.train_problems, task.problems_per_round, task.test_problems, task.ood_problems,
            config.eval.dev_problems)


def cli_config(*flags: str):
    from rest_mcts.flags import config_from_args
    from rest_mcts.iterate import build_parser

    return config_from_args(build_parser().parse_args([*flags, "--model.policy_model", "unused"]))


@pytest.fixture
def user_file(tmp_path) -> Path:
    """A user's own file: 300 problems with worked solutions."""
    return write_jsonl(tmp_path / "user.jsonl", [
        {"question": f"What is {n} plus {n}?", "answer": 2 * n, "solution": f"{n} + {n} = {2 * n}\n#### {2 * n}"}
        for n in range(300)])


def test_a_data_file_without_size_flags_gives_every_split_size(user_file):
    flags = ["--task", "jsonl", "--task.data_path", str(user_file)]
    # No worked solutions: a tenth held out as test, the rest is the train pool (its last fifth, at most 50, dev).
    assert sized(*flags) == (0, 270, 220, 30, 0, 50)
    # Worked solutions: the 270 split 8000 : 3000 between seed and train, as the defaults split them.
    assert sized(*flags, "--task.solution_field", "solution") == (196, 74, 60, 30, 0, 14)
    config = cli_config(*flags, "--task.solution_field", "solution")
    problems = RunProblems.of(config, get_task(config.task))
    drawn = [{e.problem_id for e in problems.seed_examples}, {p.id for p in problems.train},
             {p.id for p in problems.dev}, {p.id for p in problems.held_out["test"]}]
    assert [len(ids) for ids in drawn] == [196, 60, 14, 30] and "ood" not in problems.held_out
    assert set().union(*drawn) == {f"train-{line:05d}" for line in range(1, 301)}  # disjoint, the whole file


def test_sizes_given_by_flag_or_config_file_win_and_the_rest_fill_the_file(user_file, tmp_path):
    flags = ["--task", "jsonl", "--task.data_path", str(user_file), "--task.solution_field", "solution"]
    assert sized(*flags, "--task.test_problems", "50", "--eval.dev_problems", "0") == (182, 68, 68, 50, 0, 0)
    config_file = tmp_path / "sizes.yaml"
    config_file.write_text("task:\n  train_problems: 100\n")
    assert sized(*flags, "--config", str(config_file)) == (170, 100, 80, 30, 0, 20)  # seed takes the rest
    held_out = write_jsonl(tmp_path / "test.jsonl", [{"question": f"What is {n} + 1?", "answer": n + 1}
                                                    for n in range(7)])
    assert sized(*flags, "--task.test_path", str(held_out)) == (218, 82, 66, 7, 0, 16)  # the whole file trains
    too_many = cli_config(*flags, "--task.train_problems", "500")  # still checked against what the file holds
    with pytest.raises(DataError, match="--task.train_problems 500: the jsonl train split holds 270 problems"):
        get_task(too_many.task).problems("train", 500, 0)


def test_shipped_data_sets_take_their_sizes_from_their_files_and_synthetic_tasks_keep_theirs():
    assert sized("--task", "gsm8k") == (5435, 2038, 384, GSM8K_TEST, 0, 50)
    assert sized("--task", "game24") == (0, 900, 384, 100, 362, 50)  # Tree of Thoughts' ranks
    from rest_mcts.config import RunConfig

    defaults = RunConfig()
    for name in ("modtarget", "word_sort"):
        config = cli_config("--task", name)
        assert (config.task, config.eval) == (replace(defaults.task, name=name), defaults.eval)


def test_a_dry_run_shows_the_sizes_taken_from_the_file(user_file, capsys):
    import yaml

    from rest_mcts.iterate import main

    assert main(["--task", "jsonl", "--task.data_path", str(user_file), "--model.policy_model", "unused",
                 "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out.split("---")[0])
    assert {key: resolved["task"][key] for key in ("seed_problems", "train_problems", "problems_per_round",
                                                   "test_problems", "ood_problems")} == {
        "seed_problems": 0, "train_problems": 270, "problems_per_round": 220, "test_problems": 30, "ood_problems": 0}
    assert resolved["eval"]["dev_problems"] == 50


def test_a_missing_data_file_keeps_the_default_sizes_for_the_data_check_to_name_it(tmp_path):
    assert sized("--task", "jsonl", "--task.data_path", str(tmp_path / "nowhere.jsonl")) == sized()


# --- the CLI refuses bad data before it writes anything ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    from lm.build import build_tiny_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_bpe_tokenizer

    tokenizer = build_bpe_tokenizer(["Question: What is 1 + 1?\nAnswer:\n1 + 1 = 2\n#### 2\n"] * 4, 400)
    policy = build_tiny_policy(tokenizer, 32, 1, 2, 64, 512, seed=0)
    path = tmp_path_factory.mktemp("tiny") / "policy"
    save_checkpoint(policy, tokenizer, path)
    return path


def run_iterate(argv: list[str], capsys) -> tuple[int, str]:
    """`rest_mcts.iterate.main` in this process: its exit status and what it wrote."""
    from rest_mcts.iterate import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


def test_the_cli_refuses_a_bad_data_file_naming_file_and_line_and_creates_no_run_folder(tmp_path, tiny_policy):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(GOOD * 2 + b"not json\n")
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "rest_mcts.iterate", "--task", "jsonl", "--task.data_path",
                             str(bad), "--model.policy_model", str(tiny_policy), "--logging.run_dir",
                             str(tmp_path / "runs")], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: {bad}:3: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_cli_checks_the_config_then_the_model_paths_then_the_data(tmp_path, tiny_policy, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"[1]\n")
    runs = tmp_path / "runs"
    base = ["--task", "jsonl", "--task.data_path", str(bad), "--logging.run_dir", str(runs)]
    code, output = run_iterate(base + ["--task.answer_format", "bogus", "--model.policy_model",
                                       str(tmp_path / "no_model")], capsys)
    assert code == 2 and "--task.answer_format 'bogus'" in output and "no_model" not in output
    code, output = run_iterate(base + ["--model.policy_model", str(tmp_path / "no_model")], capsys)
    assert code == 2 and "no_model" in output and "bad.jsonl" not in output
    code, output = run_iterate(base + ["--model.policy_model", str(tiny_policy)], capsys)
    assert code == 2 and f"{bad}:1: a JSON list" in output
    code, output = run_iterate(base + ["--model.policy_model", str(tiny_policy), "--task.data_path", ""], capsys)
    assert code == 2 and "--task jsonl: needs --task.data_path" in output
    assert not runs.exists()


def test_the_cli_names_the_flag_of_a_split_larger_than_its_data(tmp_path, tiny_policy, capsys):
    runs = tmp_path / "runs"
    code, output = run_iterate(["--task", "gsm8k", "--task.seed_problems", "100", "--task.train_problems", "200",
                                "--task.problems_per_round", "10",
                                "--task.test_problems", "5000", "--model.policy_model", str(tiny_policy),
                                "--logging.run_dir", str(runs)], capsys)
    assert code == 2 and "--task.test_problems 5000: the gsm8k test split holds 1319 problems" in output
    assert not runs.exists()


def test_cotnpot_keeps_data_task_solutions_as_untranslatable():
    """No program is written for a real solution (that needs a model), so CoTnPoT keeps them all."""
    from rest_mcts.cotnpot import check_solutions

    task = get_task(TaskConfig(name="gsm8k", seed_problems=10, train_problems=10))
    problem = task.problems("test", 1, 0)[0]
    checks = check_solutions(task, [(problem, ["#### 18\n"]), (problem, ["no answer\n"])])
    assert [check.reason for check in checks] == ["untranslatable", "no_answer"]
