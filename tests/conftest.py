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
