"""Ray start-up (both CLIs) and placement: joining or starting the cluster, and the placement groups that hold the
search workers and trainer ranks (`Placement`, made from a `rest_mcts.plan.GroupPlan`), with the Ray options of
each actor inside its bundle (`actor_resources`). Below the actor modules (`workers`, `train_workers`, `actors`),
which all place their actors through it.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rest_mcts.plan import GroupPlan, colocated_group

logger = logging.getLogger("rest_mcts.actors")


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


DRIVER_FOLDER = "REST_MCTS_DRIVER_FOLDER"
"""Environment variable that hands the driver's working folder to the workers of a joined cluster."""


def enter_driver_folder() -> None:
    """Ray's setup hook for each worker of a joined cluster: work in the driver's folder (`DRIVER_FOLDER`) where
    this node has it, since Ray starts the worker in the folder its node's `ray start` ran in."""
    folder = os.environ.get(DRIVER_FOLDER, "")
    if os.path.isdir(folder):
        os.chdir(folder)


def start_ray(address: str, dashboard_host: str, nodes: int = 1) -> None:
    """Join the Ray cluster at `address`, or start a local one with its dashboard on `dashboard_host`; warn when
    the cluster has fewer than the `nodes` the run was planned for (`cluster.nodes`)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    check_ray_address(address)
    if address:
        # The run's relative paths (the run folder, models, data) must mean the same on every worker.
        context = ray.init(address=address, log_to_driver=False, runtime_env={
            "worker_process_setup_hook": f"{__name__}.{enter_driver_folder.__name__}",
            "env_vars": {DRIVER_FOLDER: os.getcwd()}})
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
        logger.info("placement group %s: %d bundles of %s, %s, on nodes %s", name, len(self.bundles), plan.bundle,
                    plan.strategy, self.bundle_nodes())

    def bundle_nodes(self) -> list[str]:
        """The Ray node id of each bundle, in bundle order, as Ray placed them (a bundle of a lost node is placed
        again where it fits; empty until then)."""
        nodes = placement_group_table(self.group).get("bundles_to_node_id", {})
        return [nodes.get(index, "") for index in range(len(self.bundles))]

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
