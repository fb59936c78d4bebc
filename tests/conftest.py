"""Session-wide teardown, and a local Ray cluster for the modules that start actors."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster for one test module; its workers import the project from this checkout."""
    ray = pytest.importorskip("ray")
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": python_path}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def search_settings(tmp_path_factory):
    """Search-worker settings over a tiny policy and PRM (one layer, two heads) on modchain, sampling at 1.0."""
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer
    from rest_mcts.search_models import SamplerSettings

    folder = tmp_path_factory.mktemp("checkpoints")
    tokenizer = build_char_tokenizer()
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, folder / "policy")
    save_checkpoint(prm_from_policy(folder / "policy", seed=1), tokenizer, folder / "prm")
    return SamplerSettings(str(folder / "policy"), str(folder / "prm"), "modchain", 1.0, 8, seed=5, kv_store_mb=0.0)


COMPARISON_GROUP = "tiny-comparison"


@pytest.fixture(scope="session")
def comparison_runs(tmp_path_factory):
    """Three tiny one-round runs of one comparison (W&B group `COMPARISON_GROUP`, logged offline), side by side:
    ReST-MCTS* seed 0 (with a GenRM trained in the rounds, scored at the leaf and per step, and pass@k), ReST-MCTS*
    seed 1 and ReST-EM seed 0. Returns the folder that holds their run folders."""
    from tests.test_iterate import TINY, finish, iterate

    folder = tmp_path_factory.mktemp("comparison")
    common = ["--rounds", "1", "--run-dir", "runs", "--logging.wandb_group", COMPARISON_GROUP, *TINY]
    runs = {
        "mcts-seed0": ["--seed", "0", "--eval.pass_at_k", "2", "--verifier.train_in_rounds", "true",
                       "--verifier.kind", "genrm", "--verifier.solution_weight", "0",
                       "--verifier_train.max_steps", "2", "--verifier.eval_as", "both"],
        "mcts-seed1": ["--seed", "1", "--eval.pass_at_k", "0"],
        "em-seed0": ["--seed", "0", "--eval.pass_at_k", "0", "--method", "rest_em"],
    }
    processes = {name: iterate([*common, "--experiment", name, *args], folder) for name, args in runs.items()}
    for name, process in processes.items():
        code, output = finish(process, timeout=1200)
        assert code == 0, f"{name}:\n{output}"
    return folder / "runs"


def pytest_sessionfinish(session, exitstatus):
    """Leave no torch process group for interpreter shutdown: the trainer tests join a one-rank gloo group in
    this process (`single_rank`), and tearing it down while Python exits crashed the process at times
    (exit 139 after every test had passed)."""
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
