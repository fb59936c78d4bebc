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
