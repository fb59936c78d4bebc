"""W&B tracking: the mode it picks, an empty WANDB_MODE in the environment, the console tables, and what a run
writes to its offline W&B files (identity, pages, per-length tables, accuracy-against-tokens line series)."""

from __future__ import annotations

import json

from rest_mcts.tracking import Tracker, resolve_wandb_mode


def test_configured_mode_wins_then_the_environment(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("offline") == "offline"
    assert resolve_wandb_mode("") == "disabled"


def test_without_a_login_the_mode_is_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_wandb_mode("") == "offline"


def test_an_empty_wandb_mode_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    tracker = Tracker("rest-mcts-test", "group", "", str(tmp_path), {"a": 1}, name="empty-mode")
    try:
        assert tracker.mode == "offline"
        tracker.log(0, {"test/greedy/accuracy": 0.5})
    finally:
        tracker.finish()


ROWS = [{"round": 0, "test/greedy/accuracy_len3": 0.5, "test/mcts/accuracy_len3": 0.75, "ood/mcts/accuracy_len7": 0.25,
         "test/greedy/accuracy_len10": 1.0, "test/best_of_n/accuracy_len3": 0.1, "test/greedy/accuracy": 0.5},
        {"round": 1, "test/greedy/accuracy_len3": 0.625}]


def test_length_columns_list_test_then_ood_shortest_first_greedy_before_mcts():
    from rest_mcts.tracking import length_columns

    assert length_columns(ROWS) == [
        ("test/greedy/accuracy_len3", "test len3 greedy", "{:.3f}"),
        ("test/mcts/accuracy_len3", "test len3 MCTS*", "{:.3f}"),
        ("test/greedy/accuracy_len10", "test len10 greedy", "{:.3f}"),  # 10 after 3: by number, not text
        ("ood/mcts/accuracy_len7", "ood len7 MCTS*", "{:.3f}")]  # other methods (best_of_n) left out
    assert length_columns([{"round": 0, "test/greedy/accuracy": 0.5}]) == []


def test_format_table_takes_the_columns_given_and_shows_missing_values_as_dashes():
    from rest_mcts.tracking import format_table, length_columns

    table = format_table(ROWS, [("round", "round", "{:d}"), *length_columns(ROWS)]).splitlines()
    assert table[0].split() == ["round", "test", "len3", "greedy", "test", "len3", "MCTS*", "test", "len10", "greedy",
                                "ood", "len7", "MCTS*"]
    assert table[1].split() == ["0", "0.500", "0.750", "1.000", "0.250"]
    assert table[2].split() == ["1", "0.625", "-", "-", "-"]
    assert format_table(ROWS).splitlines()[0].split()[:3] == ["round", "test", "greedy"]  # the default columns


def test_plot_length_accuracy_writes_a_png_only_when_the_rows_hold_per_length_accuracy(tmp_path):
    from rest_mcts.tracking import plot_length_accuracy

    path = tmp_path / "accuracy_by_length.png"
    assert plot_length_accuracy(ROWS, path) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.tmp.png"))
    assert plot_length_accuracy([{"round": 0, "test/greedy/accuracy": 0.5}], tmp_path / "none.png") is False
    assert not (tmp_path / "none.png").exists()


def test_a_run_carries_what_a_comparison_groups_by(monkeypatch, tmp_path):
    """group (the comparison, else the experiment), job_type (the method; control for the control arm), tags (task,
    method, seed) and a readable name reach the offline W&B run file, where W&B's run table and panels read them."""
    from rest_mcts.config import LoggingConfig, RunConfig
    from rest_mcts.tracking import Tracker, wandb_identity
    from tests.wandb_reader import history_rows, run_identity

    monkeypatch.setenv("WANDB_MODE", "offline")
    control = RunConfig(seed=2, control=True, logging=LoggingConfig(experiment="control-seed2",
                                                                    wandb_group="self-training"))
    assert wandb_identity(control)["group"] == "self-training"
    assert wandb_identity(RunConfig())["group"] == "default"  # no comparison named: the experiment
    assert wandb_identity(RunConfig(seed=1))["name"] == "default-seed1"
    assert wandb_identity(RunConfig(method="rest_em"))["job_type"] == "rest_em"
    identity = wandb_identity(control)
    tracker = Tracker("rest-mcts-test", identity["group"], "offline", str(tmp_path), {"seed": 2}, identity["name"],
                      job_type=identity["job_type"], tags=identity["tags"])
    tracker.log(0, {"test/greedy/accuracy": 0.25})
    tracker.finish()
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    assert run_identity(run_file) == {"group": "self-training", "job_type": "control",
                                      "tags": ["modtarget", "control", "seed2"], "name": "control-seed2"}
    assert history_rows(run_file)[0]["test/greedy/accuracy"] == 0.25


def test_tree_pages_are_logged_as_w_and_b_html_media_without_outside_assets(monkeypatch, tmp_path):
    from rest_mcts.tracking import Tracker
    from tests.wandb_reader import history_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    tracker = Tracker("rest-mcts-test", "g", "offline", str(tmp_path), {}, "pages")
    tracker.log_pages(1, {"test-00003": "<!doctype html><html><body><details>tree</details></body></html>"})
    tracker.finish()
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    (row,) = [row for row in history_rows(run_file) if "trees/test-00003/_type" in row]
    assert row["trees/test-00003/_type"] == "html-file" and row["_step"] == 1
    (page,) = tmp_path.glob("wandb/offline-run-*/files/media/html/trees/test-00003*.html")
    assert "<details>tree</details>" in page.read_text() and "stylesheet" not in page.read_text()


def logged_table(run_dir, row: dict, key: str) -> list[list]:
    """The rows of the W&B table `key` of a history row, from the table file the offline run wrote."""
    (files,) = run_dir.glob("wandb/offline-run-*/files")
    return json.loads((files / row[f"{key}/path"]).read_text())["data"]


def test_per_length_accuracy_is_a_table_of_every_round_so_far(monkeypatch, tmp_path):
    from rest_mcts.tracking import Tracker
    from tests.wandb_reader import history_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    tracker = Tracker("rest-mcts-test", "g", "offline", str(tmp_path), {}, "lengths")
    tracker.log(0, {"test/greedy/accuracy": 0.5, "test/mcts/accuracy_len3": 0.5, "test/greedy/accuracy_len3": 0.25})
    tracker.log(1, {"test/greedy/accuracy_len3": 0.75, "ood/mcts/accuracy_len9": 0.125})
    tracker.finish()
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    rows = history_rows(run_file)
    assert [row["_step"] for row in rows] == [0, 1] and rows[1]["round"] == 1
    assert logged_table(tmp_path, rows[0], "accuracy_by_length") == [[0, "test", "greedy", 3, 0.25],
                                                                    [0, "test", "mcts", 3, 0.5]]
    assert logged_table(tmp_path, rows[1], "accuracy_by_length") == [
        [0, "test", "greedy", 3, 0.25], [0, "test", "mcts", 3, 0.5], [1, "ood", "mcts", 9, 0.125],
        [1, "test", "greedy", 3, 0.75]]


def test_an_evaluation_logs_accuracy_against_tokens_as_line_series_per_split(monkeypatch, tmp_path):
    from rest_mcts.comparison import SummaryRow
    from rest_mcts.tracking import Tracker
    from tests.wandb_reader import history_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    tracker = Tracker("rest-mcts-test", "g", "offline", str(tmp_path), {}, "curves")
    tracker.log_rows([SummaryRow("test", "mcts", 2, 1, 10, 0.5, 0.2, 0.8, 400.0, 0.1),
                      SummaryRow("test", "greedy", 0, 1, 10, 0.3, 0.1, 0.5, 60.0, 0.1),
                      SummaryRow("test", "mcts", 1, 1, 10, 0.4, 0.1, 0.7, 200.0, 0.1),
                      SummaryRow("ood", "greedy", 0, 1, 8, 0.125, 0.0, 0.4, 70.0, 0.1)])
    tracker.finish()
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    (row,) = history_rows(run_file)
    assert row["test/mcts/2/accuracy"] == 0.5
    assert sorted(logged_table(tmp_path, row, "accuracy_vs_tokens/test_table")) == [
        [60.0, "greedy", 0.3], [200.0, "mcts", 0.4], [400.0, "mcts", 0.5]]  # x, line, y
    assert logged_table(tmp_path, row, "accuracy_vs_tokens/ood_table") == [[70.0, "greedy", 0.125]]
