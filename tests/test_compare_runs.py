"""`python -m rest_mcts.compare`: runs grouped by method (from their config.yaml) and seed, mean and spread over seeds
per round, and the plot; bad folders refused naming them."""

from __future__ import annotations

import json

import pytest
import yaml

from rest_mcts.compare import main


def fake_run(folder, method: str, seed: int, control: bool, accuracies: list[float]) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"method": method, "seed": seed, "control": control}))
    for index, accuracy in enumerate(accuracies):
        round_dir = folder / f"round_{index:02d}"
        round_dir.mkdir()
        (round_dir / "eval.json").write_text(json.dumps({"test/greedy/accuracy": accuracy,
                                                         "test/mcts/accuracy": accuracy + 0.2}))
        (round_dir / "DONE").write_text("")


def test_runs_of_two_methods_and_two_seeds_give_mean_and_spread_per_method_and_round(tmp_path, capsys):
    fake_run(tmp_path / "cmp" / "selftrain-seed0", "rest_mcts", 0, False, [0.2, 0.4])
    fake_run(tmp_path / "cmp" / "selftrain-seed1", "rest_mcts", 1, False, [0.2, 0.6])
    fake_run(tmp_path / "cmp" / "control-seed0", "rest_mcts", 0, True, [0.2, 0.3])
    (tmp_path / "cmp" / "control-seed1").mkdir()  # not a run folder: skipped inside a folder of runs
    out = tmp_path / "plot" / "compare.png"
    assert main([str(tmp_path / "cmp"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| rest_mcts | 1 | 2 | 0.500 ± 0.100 | 0.700 ± 0.100 |" in text
    assert "| control | 1 | 1 | 0.300 | 0.500 |" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unfinished_round_is_left_out(tmp_path, capsys):
    fake_run(tmp_path / "run", "rest_em", 0, False, [0.2, 0.4])
    (tmp_path / "run" / "round_01" / "DONE").unlink()
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "p.png")]) == 0
    assert "| rest_em | 1 |" not in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda path: path.mkdir(), "neither a run folder"),
    (lambda path: None, "not a folder"),
])
def test_a_folder_without_runs_is_refused_naming_it(tmp_path, capsys, make, message):
    make(tmp_path / "empty")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "empty")])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert message in error and str(tmp_path / "empty") in error
    assert not (tmp_path / "empty" / "compare.png").exists()


def test_two_runs_of_one_method_and_seed_are_refused(tmp_path, capsys):
    fake_run(tmp_path / "a" / "one", "rest_mcts", 0, False, [0.2])
    fake_run(tmp_path / "a" / "two", "rest_mcts", 0, False, [0.3])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "a")])
    assert "a second rest_mcts run of seed 0" in capsys.readouterr().err


@pytest.mark.slow
def test_three_tiny_runs_of_two_methods_and_two_seeds_compare_in_w_and_b_and_offline(comparison_runs, capsys):
    """Each run's offline W&B file carries the comparison's group, the method as job type, task/method/seed tags
    and every round's metrics at step = round, equal to its eval.json; `compare` prints the same comparison from
    the run folders (mean over the two ReST-MCTS* seeds) and writes the plot."""
    from tests.conftest import COMPARISON_GROUP
    from tests.test_tracking import logged_table
    from tests.wandb_reader import history_rows, run_identity

    expected = {"mcts-seed0": ("rest_mcts", 0), "mcts-seed1": ("rest_mcts", 1), "em-seed0": ("rest_em", 0)}
    test_accuracy: dict[str, list[float]] = {}
    for name, (method, seed) in expected.items():
        run = comparison_runs / name
        (run_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
        assert run_identity(run_file) == {"group": COMPARISON_GROUP, "job_type": method,
                                          "tags": ["modtarget", method, f"seed{seed}"], "name": name}
        rows = {row["_step"]: row for row in history_rows(run_file) if "test/mcts/accuracy" in row}
        assert sorted(rows) == [0, 1]
        for index, row in rows.items():
            saved = json.loads((run / f"round_{index:02d}" / "eval.json").read_text())
            assert row["round"] == index
            assert {key: row[key] for key in saved} == pytest.approx(saved, nan_ok=True)
            lengths = logged_table(run, row, "accuracy_by_length")
            assert {(entry[0], entry[1], entry[2]) for entry in lengths} >= {
                (r, "test", m) for r in range(index + 1) for m in ("greedy", "mcts")}
            for round_, split, method_, length, accuracy in lengths:
                if round_ == index:
                    assert saved[f"{split}/{method_}/accuracy_len{length}"] == pytest.approx(accuracy)
        test_accuracy[name] = [rows[index]["test/mcts/accuracy"] for index in (0, 1)]

    out = comparison_runs.parent / "compare.png"
    assert main([str(comparison_runs), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    mean = (test_accuracy["mcts-seed0"][1] + test_accuracy["mcts-seed1"][1]) / 2
    (line,) = [line for line in table.splitlines() if line.startswith("| rest_mcts | 1 | 2 |")]
    assert f"{mean:.3f} ±" in line.split("|")[5]
    assert [line for line in table.splitlines() if line.startswith("| rest_em | 1 | 1 |")]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
