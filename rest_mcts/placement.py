"""Colocation of search workers and trainer ranks on one Ray placement group.

The loop's stages alternate: search and evaluation use the search workers, training uses the trainer
ranks, never both at once. Colocated, bundle i of a placement group holds search worker i and trainer
rank i, each asking half of the bundle from Ray, so both kinds stay up for the whole run: no stage
waits for actors to start, libraries to import or the process group to form again (about 10 s per
training stage and 8 s per search stage on the 2-core default: `benchmarks/colocation.py`). It is the hybrid layout of veRL and
OpenRLHF's colocation; both kinds keep their models in memory at once, so turn it off
(`--cluster.colocate false`) for models that do not fit twice on a device.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

logger = logging.getLogger(__name__)


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
