"""The run's Ray actors: the search workers and trainer ranks started on first use and
stopped at the end, in the placement groups that hold them (`rest_mcts.placement`).

The loop's stages alternate: search and evaluation use the search workers, training uses the trainer
ranks, never both at once. Colocated, bundle i of a placement group holds search worker i and trainer
rank i, each asking half of the bundle from Ray, so both kinds stay up for the whole run: no stage
waits for actors to start, libraries to import or the process group to form again (about 10 s per
training stage and 8 s per search stage on the 2-core default: `benchmarks/colocation.py`). It is the hybrid
layout of veRL and OpenRLHF's colocation; both kinds keep their models in memory at once, so turn it off
(`--cluster.colocate false`) for models that do not fit twice on a device: then each kind has a placement group of
its own, up only while its stages run. The groups are those `rest_mcts.plan.group_plans` describes (and `--dry-run`
prints), with `cluster.placement_strategy`.
"""

from __future__ import annotations

import logging

from rest_mcts.config import ClusterConfig
from rest_mcts.placement import Placement
from rest_mcts.plan import SEARCH_WORKER, TRAINER_RANK, group_of
from rest_mcts.search_models import SamplerSettings
from rest_mcts.train_workers import TrainerGroup
from rest_mcts.workers import SearchPool

logger = logging.getLogger("rest_mcts")

class Actors:
    """A run's search workers and trainer ranks, started on first use, in the placement groups of the plan.

    Colocated (`cluster.colocate`), both kinds share one placement group and stay up for the whole run; the
    search workers load new checkpoints when the settings of a request change. Otherwise each kind, and its
    placement group, is stopped before the other starts, and search workers are kept only while they serve the
    same checkpoints.
    """

    def __init__(self, cluster: ClusterConfig, name: str):
        self.cluster = cluster
        self.name = name
        self._pool: SearchPool | None = None
        self._trainers: TrainerGroup | None = None
        self._placements: dict[str, Placement] = {}

    def placement(self, kind: str) -> Placement:
        """The placement group of the actors of `kind` (`plan.SEARCH_WORKER` or `plan.TRAINER_RANK`), made on
        first use."""
        plan = group_of(kind, self.cluster)
        if plan.name not in self._placements:
            self._placements[plan.name] = Placement(plan, self.cluster.timeout_s, name=f"{self.name}-{plan.name}")
        return self._placements[plan.name]

    def search_pool(self, settings: SamplerSettings, label: str) -> SearchPool:
        """Search workers serving `settings`; `label` names the actors when they are not colocated."""
        pool, cluster = self._pool, self.cluster
        if pool is not None and (cluster.colocate or (pool.settings.policy_path, pool.settings.prm_path) == (
                settings.policy_path, settings.prm_path)):
            pool.settings = settings
            return pool
        self.release_search_pool()
        if not cluster.colocate:
            self.release_trainers()
        self._pool = SearchPool(settings, cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                "search" if cluster.colocate else label, cluster.timeout_s,
                                self.placement(SEARCH_WORKER))
        return self._pool

    def trainers(self, label: str) -> TrainerGroup:
        """The DeepSpeed ranks, kept for the next training stage; `label` names them when they are not colocated."""
        cluster = self.cluster
        if not cluster.colocate:
            self.release_search_pool()
        elif self._pool is not None and self._pool.settings.backend == "vllm":
            # Colocated vLLM engines leave the devices to the trainers (what vLLM's sleep mode would do); training
            # makes new checkpoints, which the next search stage serves with new engines anyway.
            self._pool.release_engines()
            logger.info("search workers released their vLLM engines for the training stage")
        if self._trainers is None:
            self._trainers = TrainerGroup(cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                          "trainer" if cluster.colocate else label, cluster.timeout_s,
                                          cluster.cpu_shm_comm, self.placement(TRAINER_RANK),
                                          loopback=not cluster.ray_address)  # a local cluster is one machine
        return self._trainers

    def release_search_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._remove_placement(SEARCH_WORKER)

    def release_trainers(self) -> None:
        if self._trainers is not None:
            self._trainers.shutdown()
            self._trainers = None
        self._remove_placement(TRAINER_RANK)

    def _remove_placement(self, kind: str) -> None:
        """Free the placement group of `kind`, unless it is the colocation group, which lives until `release`."""
        name = group_of(kind, self.cluster).name
        if name != "colocation" and name in self._placements:
            self._placements.pop(name).remove()

    def release(self) -> None:
        """Stop every actor and free the placement groups."""
        self.release_search_pool()
        self.release_trainers()
        for placement in self._placements.values():
            placement.remove()
        self._placements.clear()
