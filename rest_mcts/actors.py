"""The run's Ray actors: Ray start-up (both CLIs), the search workers and trainer ranks started on first use and
stopped at the end, and the placement groups that hold them.

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
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rest_mcts.plan import SEARCH_WORKER, TRAINER_RANK, GroupPlan, colocated_group, group_of

if TYPE_CHECKING:
    from rest_mcts.config import ClusterConfig
    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.train_workers import TrainerGroup
    from rest_mcts.workers import SearchPool

logger = logging.getLogger(__name__)


def check_ray_address(address: str, timeout_s: float = 10.0) -> None:
    """Fail at once, naming the flag, when `address` is a `host:port` nothing answers at (Ray's own connect
    retries for minutes); `auto`, `local`, `ray://` addresses and an empty one are left to `ray.init`."""
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray-address {address!r}: expected host:port (e.g. 10.0.0.1:6379), auto or ray://...")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ValueError(f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error}); "
                         f"start one with `ray start --head` or correct the address") from None


def start_ray(address: str, dashboard_host: str, nodes: int = 1) -> None:
    """Join the Ray cluster at `address`, or start a local one with its dashboard on `dashboard_host`; warn when
    the cluster has fewer than the `nodes` the run was planned for (`cluster.nodes`)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    check_ray_address(address)
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
    alive = sum(1 for node in ray.nodes() if node.get("Alive")) if nodes > 1 else 1
    if alive < nodes:
        logger.warning("the Ray cluster has %d live nodes and --cluster.nodes is %d: the placement groups wait for "
                       "the missing nodes until --cluster.timeout_s", alive, nodes)


class Placement:
    """A Ray placement group made from a `plan.GroupPlan`: bundle i holds actor i of each kind the plan names."""

    def __init__(self, plan: GroupPlan, timeout_s: float, name: str = "rest-mcts"):
        self.plan = plan
        self.bundles = plan.bundles
        self.group = placement_group(self.bundles, strategy=plan.strategy, name=name)
        ready, _ = ray.wait([self.group.ready()], timeout=timeout_s)
        if not ready:
            remove_placement_group(self.group)
            alive = sum(1 for node in ray.nodes() if node.get("Alive"))
            raise RuntimeError(
                f"Ray could not place {len(self.bundles)} bundles of {plan.bundle} (one per "
                f"{' and '.join(plan.kinds)}, strategy {plan.strategy}) within {timeout_s:.0f} s; the cluster has "
                f"{ray.cluster_resources()} on {alive} nodes. Ask for fewer --cluster.search_workers / "
                f"--cluster.trainer_ranks or CPUs/GPUs each (--dry-run prints the plan)")
        logger.info("placement group %s: %d bundles of %s, %s", name, len(self.bundles), plan.bundle, plan.strategy)

    def actor_options(self, index: int, num_cpus: float, num_gpus: float) -> dict[str, Any]:
        """Ray options for the actor of one kind on bundle `index`: its share of the bundle (`GroupPlan.actor_ask`)."""
        if not 0 <= index < len(self.bundles):
            raise IndexError(f"bundle {index} of a placement group of {len(self.bundles)}")
        return {
            **self.plan.actor_ask(num_cpus, num_gpus),
            "scheduling_strategy": PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index),
        }

    def remove(self) -> None:
        remove_placement_group(self.group)


class Colocation(Placement):
    """A placement group of `max(workers, ranks)` bundles, each with room for one search worker and one rank."""

    def __init__(self, workers: int, cpus_per_worker: float, gpus_per_worker: float, ranks: int,
                 cpus_per_rank: float, gpus_per_rank: float, timeout_s: float, name: str = "rest-mcts",
                 strategy: str = "PACK"):
        super().__init__(colocated_group(workers, cpus_per_worker, gpus_per_worker, ranks, cpus_per_rank,
                                         gpus_per_rank, strategy), timeout_s, name)


def actor_resources(placement: Placement | None, index: int, num_cpus: float, num_gpus: float) -> dict[str, Any]:
    """Ray options for actor `index` of a kind: its own CPUs/GPUs, or its share of bundle `index` of `placement`."""
    if placement is None:
        return {"num_cpus": num_cpus, "num_gpus": num_gpus}
    return placement.actor_options(index, num_cpus, num_gpus)


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
                                "search" if cluster.colocate else label, cluster.timeout_s,
                                self.placement(SEARCH_WORKER))
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
