"""Every seed a run derives from its one `--seed`, in one place, so that runs repeat exactly and two parts of the
code can never derive the same stream differently."""

from __future__ import annotations

import zlib


def model_init_seed(run_seed: int, role: str) -> int:
    """Initialisation of a freshly built model: the embedded policy ('policy'), a new PRM head ('prm') or a new
    ORM head on the policy's body ('verifier')."""
    offsets = {"policy": 0, "prm": 1, "verifier": 2}
    if role not in offsets:
        raise ValueError(f"unknown model role {role!r}; expected one of {sorted(offsets)}")
    return run_seed + offsets[role]


def round_sampling_seed(run_seed: int, round_index: int) -> int:
    """The sampling seed of one round's search and evaluation (`SamplerSettings.seed`)."""
    return run_seed * 100 + round_index


def worker_seed(sampling_seed: int, worker_index: int) -> int:
    """The stream a search worker's sampler starts from when it loads or changes settings."""
    return sampling_seed * 1000 + worker_index


def shard_seed(sampling_seed: int, first_problem_id: str) -> int:
    """The stream of one shard of problems: it depends on the shard, not on which worker got it, so that runs
    repeat exactly whatever the scheduling."""
    return sampling_seed * 1_000_003 + zlib.crc32(first_problem_id.encode())


def verifier_shard_seed(sampling_seed: int, first_problem_id: str) -> int:
    """The stream of the checks a generative verifier writes inside one shard's search (GenRM-CoT valuing MCTS*
    nodes): apart from the shard's sampling stream, and like it independent of which worker got the shard."""
    return shard_seed(sampling_seed, first_problem_id) + 2**32


def train_seed(run_seed: int, round_index: int, offset: int = 0) -> int:
    """Data order and torch seed of one round's training call (`TrainSpec.seed`); `offset` is the trainer
    section's own `seed`."""
    return run_seed + round_index + offset


def replay_seed(run_seed: int, round_index: int) -> int:
    """Which seed solutions a round replays beside its verified traces (`traces.seed_replay_ratio`)."""
    return run_seed * 1000 + round_index


def wave_seed(sampling_seed: int, wave: int) -> int:
    """The sampling seed of one wave of ReST-EM sampling: each wave draws new solutions."""
    return sampling_seed * 1000 + 500 + wave
