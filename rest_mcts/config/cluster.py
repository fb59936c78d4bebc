"""Where the run's actors go: the `cluster` section of the run configuration (Ray, placement, CPUs and GPUs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterConfig:
    ray_address: str = ""
    """Address of an existing Ray cluster (empty: start a local one)."""
    dashboard_host: str = "127.0.0.1"
    """Interface the Ray dashboard listens on (local clusters only)."""
    search_workers: int = 2
    """Ray search workers (actors)."""
    cpus_per_worker: float = 1.0
    """CPUs per search worker; torch threads are set to this share."""
    gpus_per_worker: float = 0.0
    """GPUs per search worker."""
    trainer_ranks: int = 2
    """DeepSpeed ranks (one Ray actor each)."""
    cpus_per_rank: float = 1.0
    """CPUs per trainer rank."""
    gpus_per_rank: float = 0.0
    """GPUs per trainer rank (1 on a GPU cluster)."""
    colocate: bool = True
    """Search workers and trainer ranks share a Ray placement group (worker i and rank i on bundle i, half of it
    each) and stay up for the whole run, as stages never overlap; off: each stage's actors are stopped before the
    other kind starts (for models that do not fit twice on a device)."""
    cpu_shm_comm: bool = False
    """On CPU, let DeepSpeed use its shared-memory allreduce (compiled on first use, 70-90 s); off: plain gloo."""
    problems_per_task: int = 40
    """Problems per Ray search task; finished tasks are appended to trees.jsonl."""
    timeout_s: float = 1800.0
    """Longest wait for one Ray call or collective; a hang is a bug."""
    nodes: int = 1
    """Nodes of the Ray cluster the run expects (more than 1: join one with --ray-address); the plan lays the
    placement groups out over them and a run warns when the cluster has fewer."""
    gpus_per_node: int = 0
    """GPUs on each node, for the plan's check that the placement groups fit (0: not checked)."""
    cpus_per_node: int = 0
    """CPUs on each node, for the plan's check that the placement groups fit (0: not checked)."""
    placement_strategy: str = "PACK"
    """Ray strategy of the placement groups: PACK (as few nodes as fit; rank i beside rank i+1), SPREAD (across
    nodes, best effort), STRICT_PACK (one node or fail) or STRICT_SPREAD (one bundle per node or fail)."""


PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
"""Ray's placement group strategies (`ClusterConfig.placement_strategy`)."""
