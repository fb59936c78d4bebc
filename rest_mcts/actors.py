"""The run's Ray actors: Ray start-up (both CLIs), the search workers and trainer ranks started on first use and
stopped at the end, and their colocation on one placement group.

The loop's stages alternate: search and evaluation use the search workers, training uses the trainer
ranks, never both at once. Colocated, bundle i of a placement group holds search worker i and trainer
rank i, each asking half of the bundle from Ray, so both kinds stay up for the whole run: no stage
waits for actors to start, libraries to import or the process group to form again (about 10 s per
training stage and 8 s per search stage on the 2-core default: `benchmarks/colocation.py`). It is the hybrid
layout of veRL and OpenRLHF's colocation; both kinds keep their models in memory at once, so turn it off
(`--cluster.colocate false`) for models that do not fit twice on a device.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

if TYPE_CHECKING:
    from rest_mcts.config import ClusterConfig
    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.train_workers import TrainerGroup
    from rest_mcts.workers import SearchPool

logger = logging.getLogger(__name__)


def start_ray(address: str, dashboard_host: str) -> None:
    """Join the Ray cluster at `address`, or start a local one with its dashboard on `dashboard_host`."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        context = ray.init(address=address, log_to_driver=False)
    else:
        context = ray.init(include_dashboard=True, dashboard_host=dashboard_host,
                           log_to_driver=False, logging_level=logging.WARNING)
    url = getattr(context, "dashboard_url", None)
    if url:
        # Ray 2.x guards its dashboard with a token it writes to ~/.ray/auth_token on first start.
        token = Path.home() / ".ray" / "auth_token"
        login = f" (log in with the token in {token})" if token.exists() else ""
        print(f"Ray dashboard: http://{url}{login}", flush=True)


class Colocation:
    """A placement group of `max(workers, ranks)` bundles, each with room for one search worker and one rank."""

    def __init__(self, workers: int, cpus_per_worker: float, gpus_per_worker: float, ranks: int,
                 cpus_per_rank: float, gpus_per_rank: float, timeout_s: float, name: str = "rest-mcts"):
        bundle = {"CPU": max(cpus_per_worker, cpus_per_rank)}
        if max(gpus_per_worker, gpus_per_rank) > 0:
            bundle["GPU"] = max(gpus_per_worker, gpus_per_rank)
        self.bundles = [dict(bundle) for _ in range(max(workers, ranks))]
        self.group = placement_group(self.bundles, strategy="PACK", name=name)
        ready, _ = ray.wait([self.group.ready()], timeout=timeout_s)
        if not ready:
            remove_placement_group(self.group)
            raise RuntimeError(
                f"Ray could not place {len(self.bundles)} bundles of {bundle} (one per search worker and trainer "
                f"rank) within {timeout_s:.0f} s; the cluster has {ray.cluster_resources()}. Ask for fewer "
                f"--cluster.search_workers / --cluster.trainer_ranks or CPUs/GPUs each")
        logger.info("colocated search workers and trainer ranks on %d bundles of %s", len(self.bundles), bundle)

    def actor_options(self, index: int, num_cpus: float, num_gpus: float) -> dict[str, Any]:
        """Ray options for the actor of one kind on bundle `index`: half of the bundle's share for its kind."""
        if not 0 <= index < len(self.bundles):
            raise IndexError(f"bundle {index} of a placement group of {len(self.bundles)}")
        return {
            "num_cpus": num_cpus / 2,
            "num_gpus": num_gpus / 2,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index),
        }

    def remove(self) -> None:
        remove_placement_group(self.group)


def actor_resources(colocation: Colocation | None, index: int, num_cpus: float, num_gpus: float) -> dict[str, Any]:
    """Ray options for actor `index` of a kind: its own CPUs/GPUs, or its half of a colocation bundle."""
    if colocation is None:
        return {"num_cpus": num_cpus, "num_gpus": num_gpus}
    return colocation.actor_options(index, num_cpus, num_gpus)


class Actors:
    """A run's search workers and trainer ranks, started on first use.

    Colocated (`cluster.colocate`), both kinds share one placement group and stay up for the whole run; the
    search workers load new checkpoints when the settings of a request change. Otherwise each kind is stopped
    before the other starts, and search workers are kept only while they serve the same checkpoints.
    """

    def __init__(self, cluster: ClusterConfig, name: str):
        self.cluster = cluster
        self.name = name
        self._pool: SearchPool | None = None
        self._trainers: TrainerGroup | None = None
        self._colocation: Colocation | None = None

    def colocation(self) -> Colocation | None:
        """The run's placement group shared by search workers and trainer ranks (None unless colocated)."""
        cluster = self.cluster
        if cluster.colocate and self._colocation is None:
            self._colocation = Colocation(cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                          cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                          cluster.timeout_s, name=f"{self.name}-colocation")
        return self._colocation

    def search_pool(self, settings: SamplerSettings, label: str) -> SearchPool:
        """Search workers serving `settings`; `label` names the actors when they are not colocated."""
        from rest_mcts.workers import SearchPool

        pool, cluster = self._pool, self.cluster
        if pool is not None and (cluster.colocate or (pool.settings.policy_path, pool.settings.prm_path) == (
                settings.policy_path, settings.prm_path)):
            pool.settings = settings
            return pool
        self.release_search_pool()
        if not cluster.colocate:
            self.release_trainers()
        self._pool = SearchPool(settings, cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                "search" if cluster.colocate else label, cluster.timeout_s, self.colocation())
        return self._pool

    def trainers(self, label: str) -> TrainerGroup:
        """The DeepSpeed ranks, kept for the next training stage; `label` names them when they are not colocated."""
        from rest_mcts.train_workers import TrainerGroup

        cluster = self.cluster
        if not cluster.colocate:
            self.release_search_pool()
        if self._trainers is None:
            self._trainers = TrainerGroup(cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                          "trainer" if cluster.colocate else label, cluster.timeout_s,
                                          cluster.cpu_shm_comm, self.colocation())
        return self._trainers

    def release_search_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def release_trainers(self) -> None:
        if self._trainers is not None:
            self._trainers.shutdown()
            self._trainers = None

    def release(self) -> None:
        """Stop every actor and free the placement group."""
        self.release_search_pool()
        self.release_trainers()
        if self._colocation is not None:
            self._colocation.remove()
            self._colocation = None
