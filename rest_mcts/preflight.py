"""Checks of the world outside the configuration that `iterate` makes before it writes anything: a local Ray
cluster fits this machine, an online W&B run has credentials, the run folder can be made and written and its
disk holds what the run will write. (`config.validate` checks the values themselves, `config.check_task_data`
the task's data.)"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

from rest_mcts.config import ConfigError, RunConfig

DATA_MARGIN_BYTES = 64 * 2**20
"""Room for what a run writes besides checkpoints (trees, examples, logs, W&B files), on the small defaults."""

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""Write errors that mean no room is left: a full disk, a spent quota, a file-size limit."""


def disk_full(error: BaseException) -> bool:
    """Whether `error` says a write found no room: an OSError of `DISK_FULL_ERRNOS`, or a library's own error (a
    checkpoint's SafetensorError, a trainer rank's error as Ray passes it on) whose message is the system's."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    return any(os.strerror(number) in str(error) for number in DISK_FULL_ERRNOS)


def run_folder(config: RunConfig) -> Path:
    return Path(config.logging.run_dir) / config.logging.experiment


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def outermost_new_folder(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (what making `folder` creates, and what
    removing undoes), or None when `folder` exists."""
    folder = folder.absolute()
    if folder.exists():
        return None
    while not folder.parent.exists():
        folder = folder.parent
    return folder


def check_run_folder(config: RunConfig, resume: bool) -> None:
    """The run folder is (or can be made) a writable folder on a disk with room for the run (`run_bytes`)."""
    folder = run_folder(config)
    existing = nearest_existing(folder)
    flag = f"--run-dir {config.logging.run_dir} --experiment {config.logging.experiment}"
    if not existing.is_dir():
        raise ConfigError(f"{flag}: {existing} is a file, not a folder; choose another --run-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}: cannot write the run folder {folder}: {existing} is not writable by this user "
                          f"(uid {os.getuid()}); choose a --run-dir you can write")
    need = run_bytes(config)
    if resume and folder.is_dir():  # what the finished rounds wrote is on the disk already
        need = max(0, need - sum(file.stat().st_size for file in folder.rglob("*") if file.is_file()))
    free = shutil.disk_usage(existing).free
    if free < need:
        raise ConfigError(f"{flag}: {free / 2**20:.0f} MiB free on the disk of {existing}, and the run writes about "
                          f"{need / 2**20:.0f} MiB (every round keeps its policy and PRM checkpoints); free space, "
                          f"choose another --run-dir or fewer --rounds")


def run_bytes(config: RunConfig) -> int:
    """About what a run writes: its checkpoints (round 0: the initial policy and PRM too; with a verifier trained
    in the rounds, one more per round) plus `DATA_MARGIN_BYTES`."""
    per_round = 2 + int(config.verifier.train_in_rounds)
    checkpoints = (config.rounds + 1) * per_round + 2
    policy = checkpoint_bytes(config.model.policy_model, config)
    prm = checkpoint_bytes(config.model.prm_model, config) if config.model.prm_model else policy
    return int(checkpoints * max(policy, prm)) + DATA_MARGIN_BYTES


def checkpoint_bytes(path: str, config: RunConfig) -> int:
    """The size of a checkpoint of the model at `path` (its weight files), or of the embedded policy in float32."""
    if path:
        folder = Path(path)
        return sum(file.stat().st_size for pattern in ("*.safetensors", "*.bin", "*.pt")
                   for file in folder.glob(pattern))
    import torch

    from rest_mcts.models.build import build_tiny_policy
    from rest_mcts.models.tokenizer import build_char_tokenizer

    model = config.model
    with torch.device("meta"):
        policy = build_tiny_policy(build_char_tokenizer(), model.hidden_size, model.num_layers, model.num_heads,
                                   model.intermediate_size, model.max_positions)
    return 4 * sum(parameter.numel() for parameter in policy.parameters())


def check_wandb(config: RunConfig) -> None:
    """An online W&B run needs credentials: without them wandb.init would ask for them (or fail) mid-start."""
    from rest_mcts.tracking import resolve_wandb_mode, wandb_credentials

    mode = resolve_wandb_mode(config.logging.wandb_mode)
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"WANDB_MODE {mode!r}: expected online, offline or disabled")
    if mode == "online" and not wandb_credentials():
        raise ConfigError("--logging.wandb_mode online: no W&B credentials (set WANDB_API_KEY or run `wandb login`); "
                          "or log offline with --logging.wandb_mode offline")


def local_resources() -> dict[str, int]:
    """The CPUs this process may use and the GPUs torch sees: what a local Ray cluster offers."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"CPU": cpus, "GPU": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def check_local_resources(config: RunConfig) -> None:
    """On a local Ray cluster (no --ray-address), the dashboard's host is an address of this machine, and every
    placement group fits this machine (otherwise Ray would wait --cluster.timeout_s for resources that never
    come)."""
    if config.cluster.ray_address:
        return
    host = config.cluster.dashboard_host
    try:  # the dashboard of a local cluster listens here: an address of this machine
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"--cluster.dashboard_host {host!r}: not an address this machine can listen on "
                          f"({reason}); expected e.g. 127.0.0.1 or 0.0.0.0") from None
    from rest_mcts.plan import SEARCH_WORKER, TRAINER_RANK, group_flags, group_of

    have = local_resources()
    for kind in (SEARCH_WORKER, TRAINER_RANK):
        group = group_of(kind, config.cluster)
        for resource, amount in group.bundle.items():
            total = group.count * amount
            if total > have.get(resource, 0) + 1e-9:
                raise ConfigError(f"the {group.name} placement group needs {total:g} {resource}s "
                                  f"({group_flags(group, resource, config.cluster)}), and this machine has "
                                  f"{have.get(resource, 0)} for a local Ray cluster; ask for fewer, or join a "
                                  f"cluster with --ray-address")
