"""experiments/math_best_of_n.py end to end on the real MATH Best-of-8 fixture: pass@k from the labels, votes and
Best-of-N graded by math-verify against the labels, the shipped copy of the data, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "math_best_of_n.py"
SHIPPED_MATH = REPO / "rest_mcts" / "tasks" / "data" / "math" / "math_cot_100.jsonl"
PUBLIC_MATH = REPO.parent / "shared" / "data" / "math" / "math_cot_100.jsonl"
"""The public file the shipped copy was taken from, where the checkout sits beside the shared data."""


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("math_best_of_n") / "result.json"
    completed = run_script("--data", str(SHIPPED_MATH), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "| 8 | weighted_vote |" in completed.stdout
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def rows_of_file():
    return [json.loads(line) for line in SHIPPED_MATH.read_text(encoding="utf-8").splitlines()]


def row(result, sample_size, method):
    [found] = [r for r in result["rows"] if r["sample_size"] == sample_size and r["method"] == method]
    return found


def test_pass_at_1_and_8_by_the_labels_are_the_mean_label_and_any_label(result, rows_of_file):
    mean_label = sum(sum(r["score"]) for r in rows_of_file) / sum(len(r["score"]) for r in rows_of_file)
    any_label = sum(any(r["score"]) for r in rows_of_file) / len(rows_of_file)
    assert row(result, 1, "pass@N")["labels"] == pytest.approx(mean_label)
    assert row(result, 8, "pass@N")["labels"] == pytest.approx(any_label)
    # The grader may differ from the labels on a response or two, not more.
    assert row(result, 1, "pass@N")["math_verify"] == pytest.approx(mean_label, abs=2 / 800)
    assert row(result, 8, "pass@N")["math_verify"] == pytest.approx(any_label, abs=0.02)


def test_best_of_n_by_the_labels_is_the_argmax_reward_label(result, rows_of_file):
    """Qwen2.5-Math's rm@k (evaluation/rm_maj_eval.py): the label of the first response with the highest score."""
    for sample_size in (1, 2, 4, 8):
        rewards = [[score[0] for score in r["pred_score"][:sample_size]] for r in rows_of_file]
        expected = sum(r["score"][rs.index(max(rs))] for r, rs in zip(rows_of_file, rewards)) / len(rows_of_file)
        assert row(result, sample_size, "best_of_n")["labels"] == pytest.approx(expected)


def test_votes_and_best_of_n_by_math_verify_agree_with_the_labels_on_nearly_all_problems(result, rows_of_file):
    for r in result["rows"]:
        assert len(r["disagreements"]) <= 2, r
        assert abs(r["math_verify"] - r["labels"]) <= 2 / len(rows_of_file), r
    assert len(result["disagreeing_problems"]) <= 2
    assert result["problems"] == len(rows_of_file)


@pytest.mark.skipif(not PUBLIC_MATH.exists(), reason="the shared data folder is not beside this checkout")
def test_the_shipped_data_is_the_public_file_unchanged():
    assert SHIPPED_MATH.read_bytes() == PUBLIC_MATH.read_bytes()
    assert (SHIPPED_MATH.parent / "LICENSE").read_bytes() == (PUBLIC_MATH.parent / "LICENSE").read_bytes()


def test_by_default_the_script_reads_the_shipped_copy():
    completed = run_script()
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("math_cot_100.jsonl: 100 problems")


@pytest.mark.parametrize("bad_line, message", [
    ("missing", "missing field 'pred_score'"),
    ("{not json", "not valid JSON"),
])
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, bad_line, message):
    first, second = SHIPPED_MATH.read_text(encoding="utf-8").splitlines()[:2]
    if bad_line == "missing":
        record = json.loads(second)
        del record["pred_score"]
        bad_line = json.dumps(record)
    data, out = tmp_path / "bad.jsonl", tmp_path / "result.json"
    data.write_text(first + "\n" + bad_line + "\n", encoding="utf-8")
    completed = run_script("--data", str(data), "--out", str(out))
    assert completed.returncode != 0
    assert f"{data}:2: {message}" in completed.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [data]
