"""`python -m rest_mcts.iterate --dry-run` on every configuration in experiments/configs: it validates, prints the
configuration and its placement plan, and starts, loads and writes nothing; impossible plans exit 2 naming a flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rest_mcts.config import LoggingConfig, RunConfig
from rest_mcts.flags import save_yaml
from rest_mcts.iterate import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "experiments" / "configs").glob("*.yaml"))
SEVEN_B = REPO / "experiments" / "configs" / "qwen2.5-7b-zero3-2x8gpu.yaml"


def dry_run(argv: list[str], capsys) -> tuple[int, dict, dict]:
    """main(argv + --dry-run) in this process: (exit code, printed configuration, printed plan)."""
    code = main([*argv, "--dry-run"])
    config, plan = yaml.safe_load_all(capsys.readouterr().out)
    return code, config, plan


def test_the_configs_folder_holds_the_gpu_and_cpu_examples():
    names = {path.name for path in CONFIGS}
    assert {"qwen2.5-1.5b-1gpu.yaml", "qwen2.5-7b-zero3-2x8gpu.yaml", "tiny-cpu.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[path.name for path in CONFIGS])
def test_dry_run_of_each_config_prints_its_plan_and_starts_loads_and_writes_nothing(path, tmp_path, monkeypatch,
                                                                                     capsys):
    import ray

    monkeypatch.chdir(tmp_path)
    code, config, plan = dry_run(["--config", str(path)], capsys)
    assert code == 0
    assert config["cluster"]["nodes"] == plan["resources"]["nodes"]
    assert set(plan["actors"]) == {"search workers", "trainer ranks"}
    assert plan["deepspeed"]["world_size"] == config["cluster"]["trainer_ranks"]
    assert "policy" in plan["deepspeed"]["roles"]
    assert any(line.startswith("model paths") for line in plan["not_checked"])
    assert list(tmp_path.iterdir()) == []  # no run folder, no log
    assert not (Path(config["logging"]["run_dir"]) / config["logging"]["experiment"]).exists()
    assert not ray.is_initialized()


def test_the_7b_config_spreads_16_zero3_ranks_over_two_nodes_of_8_gpus(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _, config, plan = dry_run(["--config", str(SEVEN_B)], capsys)
    assert config["policy_train"]["gradient_checkpointing"] and config["policy_train"]["bf16"]
    assert plan["actors"]["trainer ranks"]["each_asks"] == {"CPU": 8, "GPU": 1}
    assert plan["layout"]["trainer"] == {"node 0": {"bundles": "0-7", "CPU": 64, "GPU": 8},
                                         "node 1": {"bundles": "8-15", "CPU": 64, "GPU": 8}}
    policy = plan["deepspeed"]["roles"]["policy"]
    assert policy["config"]["zero_optimization"]["stage"] == 3 and policy["config"]["bf16"]["enabled"]
    assert policy["config"]["train_batch_size"] == 2 * 2 * 16


def test_the_real_cli_dry_run_exits_0_and_writes_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "rest_mcts.iterate", "--config", str(SEVEN_B), "--dry-run"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "# Placement plan" in result.stdout and "/models/Qwen2.5-Math-7B-Instruct" in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cluster.trainer_ranks", "24"], "needs 24 GPUs (--cluster.trainer_ranks 24 x --cluster.gpus_per_rank 1"),
        (["--cluster.nodes", "1"], "more than --cluster.nodes 1 x --cluster.gpus_per_node 8 = 8"),
        (["--cluster.gpus_per_rank", "0.5"], "--cluster.gpus_per_rank 0.5 with --cluster.trainer_ranks 16"),
        (["--cluster.cpus_per_rank", "16"], "needs 256 CPUs"),
        (["--cluster.placement_strategy", "STRICT_SPREAD"], "--cluster.placement_strategy STRICT_SPREAD"),
        (["--cluster.placement_strategy", "STRICT_PACK"], "--cluster.placement_strategy STRICT_PACK"),
        (["--cluster.placement_strategy", "spread"], "--cluster.placement_strategy 'spread'"),
        (["--ray-address", ""], "--cluster.nodes 2: a local Ray cluster has one node"),
    ],
)
def test_an_impossible_plan_exits_2_naming_the_flag(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(SEVEN_B), *args, "--dry-run"])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_dry_run_of_a_resume_shows_the_saved_configuration_and_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "runs" / "default" / "config.yaml"
    saved.parent.mkdir(parents=True)
    saved.write_text(save_yaml(RunConfig(rounds=1)), encoding="utf-8")
    code, config, _ = dry_run(["--resume", "--rounds", "2"], capsys)
    assert code == 0 and config["rounds"] == 2
    assert [path.name for path in saved.parent.iterdir()] == ["config.yaml"]
    assert yaml.safe_load(saved.read_text(encoding="utf-8"))["rounds"] == 1


def test_a_resumed_run_goes_on_in_the_folder_it_was_found_in_not_the_one_it_was_saved_with(tmp_path, monkeypatch,
                                                                                           capsys):
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "moved" / "copy" / "config.yaml"
    saved.parent.mkdir(parents=True)
    saved.write_text(save_yaml(RunConfig(rounds=1, logging=LoggingConfig(run_dir=str(tmp_path / "old"),
                                                                          experiment="original"))),
                     encoding="utf-8")
    code, config, _ = dry_run(["--resume", "--run-dir", "moved", "--experiment", "copy"], capsys)
    assert code == 0
    assert (config["logging"]["run_dir"], config["logging"]["experiment"]) == ("moved", "copy")
    assert not (tmp_path / "old").exists()
