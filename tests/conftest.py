"""Session-wide teardown."""


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
