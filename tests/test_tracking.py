"""W&B tracking: the mode it picks, and an empty WANDB_MODE in the environment."""

from __future__ import annotations

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
