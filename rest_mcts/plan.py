"""The Ray placement plan of a run, resolved from its configuration alone (no Ray, no accelerator, no model): the
actors each stage uses and what each asks of Ray, the placement groups that hold them and how those fit the nodes,
and the DeepSpeed config of each trainer role. `rest_mcts.actors` creates the groups described here (`group_plans`),
`config.validate` refuses a plan that cannot be placed, and `python -m rest_mcts.iterate --dry-run` prints it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rest_mcts.config import ClusterConfig, ConfigError, RunConfig
from rest_mcts.recipes import DRIVER, SEARCH_WORKER, TRAINER_RANK, all_stages, recipe
from trainers.spec import deepspeed_config_for

STAGE_ACTORS = {spec.body: spec.actor for spec in all_stages() if spec.actor != DRIVER}
"""The actors a stage uses, by the name of its function in `rest_mcts.stages` (`rest_mcts.recipes`)."""
DRIVER_STAGES = frozenset(spec.body for spec in all_stages() if spec.actor == DRIVER)
"""Stage functions that run in the driver process alone."""


@dataclass(frozen=True)
class GroupPlan:
    """One Ray placement group of `count` equal bundles: bundle i holds actor i of each kind in `kinds`, and each of
    those actors asks Ray for its own CPUs and GPUs divided by the number of kinds sharing the bundle."""

    name: str
    """colocation (both kinds, up for the whole run), or search / trainer (one kind, up while its stages run)."""
    kinds: tuple[str, ...]
    count: int
    bundle: dict[str, float]
    """Resources of each bundle: {"CPU": n} and, when there are GPUs, {"GPU": n}."""
    strategy: str
    """Ray's placement strategy (`ClusterConfig.placement_strategy`)."""

    @property
    def bundles(self) -> list[dict[str, float]]:
        return [dict(self.bundle) for _ in range(self.count)]

    def actor_ask(self, num_cpus: float, num_gpus: float) -> dict[str, float]:
        """What an actor configured with `num_cpus` and `num_gpus` asks Ray for inside its bundle."""
        share = len(self.kinds)
        return {"num_cpus": _number(num_cpus / share), "num_gpus": _number(num_gpus / share)}


def _number(value: float) -> float:
    """`value` as an int when it is whole (for Ray and for the printed plan), else rounded to Ray's precision."""
    return int(value) if float(value).is_integer() else round(value, 4)


def _bundle(cpus: float, gpus: float) -> dict[str, float]:
    return {"CPU": _number(cpus), **({"GPU": _number(gpus)} if gpus > 0 else {})}


def colocated_group(workers: int, cpus_per_worker: float, gpus_per_worker: float, ranks: int, cpus_per_rank: float,
                    gpus_per_rank: float, strategy: str = "PACK") -> GroupPlan:
    """The colocation group: max(workers, ranks) bundles, each with room for one search worker and one trainer rank
    (the larger of their CPUs and GPUs), half of it for each."""
    return GroupPlan("colocation", (SEARCH_WORKER, TRAINER_RANK), max(workers, ranks),
                     _bundle(max(cpus_per_worker, cpus_per_rank), max(gpus_per_worker, gpus_per_rank)), strategy)


def group_plans(cluster: ClusterConfig) -> list[GroupPlan]:
    """The run's placement groups: one colocation group (`cluster.colocate`), or one group per actor kind, each up
    only while its stages run."""
    if cluster.colocate:
        return [colocated_group(cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                cluster.placement_strategy)]
    return [GroupPlan("search", (SEARCH_WORKER,), cluster.search_workers,
                      _bundle(cluster.cpus_per_worker, cluster.gpus_per_worker), cluster.placement_strategy),
            GroupPlan("trainer", (TRAINER_RANK,), cluster.trainer_ranks,
                      _bundle(cluster.cpus_per_rank, cluster.gpus_per_rank), cluster.placement_strategy)]


def group_of(kind: str, cluster: ClusterConfig) -> GroupPlan:
    """The placement group that holds the actors of `kind` (SEARCH_WORKER or TRAINER_RANK)."""
    return next(group for group in group_plans(cluster) if kind in group.kinds)


def placement_plan(config: RunConfig) -> dict:
    """The run's plan as plain data (what `--dry-run` prints): the actors of each stage, what each actor asks Ray
    for, the placement groups and the nodes their strategy aims them at, the resources needed against those of
    `cluster.nodes` nodes, the DeepSpeed config of each trained role, and warnings.

    Raises ConfigError naming the flags when the groups cannot be placed: more GPUs or CPUs than the nodes have
    (`cluster.gpus_per_node`, `cpus_per_node`; 0: not checked), a bundle larger than a node, more bundles than
    nodes under STRICT_SPREAD, or trainer ranks that would share a GPU (NCCL needs one per rank).
    """
    cluster = config.cluster
    warnings: list[str] = []
    groups = group_plans(cluster)
    _check_trainer_gpus(cluster, group_of(TRAINER_RANK, cluster))
    actors = {}
    kinds = ((SEARCH_WORKER, cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker),
             (TRAINER_RANK, cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank))
    for kind, count, cpus, gpus in kinds:
        group = group_of(kind, cluster)
        ask = group.actor_ask(cpus, gpus)
        actors[f"{kind}s"] = {"count": count, "each_asks": {"CPU": ask["num_cpus"], "GPU": ask["num_gpus"]},
                              "placement_group": group.name}
        if ask["num_gpus"] > 1:
            warnings.append(f"each {kind} asks for {ask['num_gpus']} GPUs but uses one device; the rest stay idle")
    needed = {resource: _number(max(group.count * group.bundle.get(resource, 0) for group in groups))
              for resource in ("CPU", "GPU")}
    return {
        "ray": f"join {cluster.ray_address}" if cluster.ray_address else "start a local one-node cluster",
        "stages": stage_actors(config),
        "actors": actors,
        "placement_groups": {group.name: _describe(group) for group in groups},
        "resources": {
            "needed": needed,
            "per_node": {"CPU": cluster.cpus_per_node or "not given", "GPU": cluster.gpus_per_node or "not given"},
            "nodes": cluster.nodes,
        },
        "layout": {group.name: _layout(group, cluster) for group in groups},
        "deepspeed": _deepspeed(config, warnings),
        "warnings": warnings,
    }


def stage_actors(config: RunConfig) -> dict[str, dict[str, str]]:
    """For round 0 and the later rounds: each stage and what runs it (the driver, search workers, or trainer ranks
    with the role they train)."""
    rounds = {"round 0": 0}
    if config.rounds >= 1:
        rounds["round 1" if config.rounds == 1 else f"rounds 1-{config.rounds}"] = 1
    return {label: {spec.name: (f"{spec.actor}s ({spec.role})" if spec.role else
                                DRIVER if spec.actor == DRIVER else f"{spec.actor}s")
                    for spec in recipe(config.method, round_index, config.verifier.train_in_rounds)}
            for label, round_index in rounds.items()}


def trained_roles(config: RunConfig) -> list[str]:
    """The model roles the run trains (policy, prm, verifier), in the order they first train."""
    roles: list[str] = []
    for round_index in (0, 1) if config.rounds >= 1 else (0,):
        for spec in recipe(config.method, round_index, config.verifier.train_in_rounds):
            if spec.role and spec.role not in roles:
                roles.append(spec.role)
    return roles


def _describe(group: GroupPlan) -> dict:
    if group.name == "colocation":
        holds, up = "search worker i and trainer rank i (half of it each)", "the whole run"
    else:
        holds, up = f"{group.kinds[0]} i", f"while the {group.kinds[0]}s' stages run (removed before the other kind's)"
    return {"bundles": group.count, "bundle": group.bundle, "strategy": group.strategy, "bundle_i_holds": holds,
            "up": up}


def _check_trainer_gpus(cluster: ClusterConfig, group: GroupPlan) -> None:
    """Trainer ranks on GPUs need a GPU each: NCCL refuses two ranks of one group on the same device."""
    gpus = group.bundle.get("GPU", 0)
    if cluster.gpus_per_rank > 0 and cluster.trainer_ranks > 1 and gpus < 1:
        flags = ("max(--cluster.gpus_per_worker, --cluster.gpus_per_rank)" if group.name == "colocation"
                 else "--cluster.gpus_per_rank")
        raise ConfigError(f"--cluster.gpus_per_rank {cluster.gpus_per_rank} with --cluster.trainer_ranks "
                          f"{cluster.trainer_ranks}: each rank's bundle holds {gpus} GPU ({flags}), so ranks would "
                          f"share a GPU, which NCCL refuses; give each rank a whole GPU or use one rank")


def group_flags(group: GroupPlan, resource: str, cluster: ClusterConfig) -> str:
    """The flags that size `resource` of `group`, with their values (for error messages)."""
    unit = "gpus" if resource == "GPU" else "cpus"
    worker = f"--cluster.{unit}_per_worker {getattr(cluster, f'{unit}_per_worker')}"
    rank = f"--cluster.{unit}_per_rank {getattr(cluster, f'{unit}_per_rank')}"
    if group.name == "colocation":
        return (f"max(--cluster.search_workers {cluster.search_workers}, --cluster.trainer_ranks "
                f"{cluster.trainer_ranks}) bundles of max({worker}, {rank})")
    if group.name == "search":
        return f"--cluster.search_workers {cluster.search_workers} x {worker}"
    return f"--cluster.trainer_ranks {cluster.trainer_ranks} x {rank}"


def _layout(group: GroupPlan, cluster: ClusterConfig) -> dict[str, dict] | str:
    """The nodes `group.strategy` aims the bundles at, as {"node k": {"bundles": "i-j", "CPU": n, "GPU": n}} (Ray
    picks the actual nodes), after checking that they fit `cluster.nodes` nodes of the given size."""
    nodes = cluster.nodes
    capacity = {"CPU": cluster.cpus_per_node or math.inf, "GPU": cluster.gpus_per_node or math.inf}
    node_flags = {"CPU": "--cluster.cpus_per_node", "GPU": "--cluster.gpus_per_node"}
    for resource, amount in group.bundle.items():
        total = group.count * amount
        if total > nodes * capacity[resource] + 1e-9:
            raise ConfigError(f"the {group.name} placement group needs {_number(total)} {resource}s "
                              f"({group_flags(group, resource, cluster)}), more than --cluster.nodes {nodes} x "
                              f"{node_flags[resource]} {capacity[resource]} = {nodes * capacity[resource]}")
        if amount > capacity[resource] + 1e-9:
            raise ConfigError(f"a bundle of the {group.name} placement group needs {amount} {resource}s "
                              f"({group_flags(group, resource, cluster)}), more than one node has "
                              f"({node_flags[resource]} {capacity[resource]})")
    strategy = group.strategy
    if strategy == "STRICT_SPREAD" and group.count > nodes:
        raise ConfigError(f"--cluster.placement_strategy STRICT_SPREAD puts each of the {group.count} bundles of the "
                          f"{group.name} placement group on a node of its own; --cluster.nodes is {nodes}")
    if strategy == "PACK" and nodes > 1 and not (cluster.cpus_per_node or cluster.gpus_per_node):
        return "as few nodes as have room (give --cluster.gpus_per_node / cpus_per_node to see which)"
    used = [dict.fromkeys(group.bundle, 0.0) for _ in range(nodes)]
    placed: list[list[int]] = [[] for _ in range(nodes)]
    for index in range(group.count):
        if strategy == "STRICT_PACK":
            order = [0]
        elif strategy in ("SPREAD", "STRICT_SPREAD"):
            order = [(index + k) % nodes for k in range(nodes)]
        else:  # PACK: fill the first nodes first
            order = list(range(nodes))
        node = next((k for k in order if all(used[k][r] + a <= capacity[r] + 1e-9 for r, a in group.bundle.items())),
                    None)
        if node is None or (strategy == "STRICT_SPREAD" and placed[node]):
            where = "one node" if strategy == "STRICT_PACK" else f"--cluster.nodes {nodes}"
            size = ", ".join(f"{amount} {resource}s" for resource, amount in capacity.items() if amount < math.inf)
            raise ConfigError(f"the {group.count} bundles of {group.bundle} of the {group.name} placement group do "
                              f"not fit {where} of {size} under --cluster.placement_strategy {strategy}; ask for "
                              f"fewer or smaller actors, or another strategy")
        placed[node].append(index)
        for resource, amount in group.bundle.items():
            used[node][resource] += amount
    return {f"node {k}": {"bundles": _ranges(placed[k]), **{r: _number(v) for r, v in used[k].items()}}
            for k in range(nodes) if placed[k]}


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    parts, start = [], None
    for position, index in enumerate(indices):
        if start is None:
            start = index
        if position + 1 == len(indices) or indices[position + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ", ".join(parts)


def _deepspeed(config: RunConfig, warnings: list[str]) -> dict:
    """Each trained role's DeepSpeed config as `trainers.engine.deepspeed_config` builds it on the ranks, bf16 as
    asked (a rank whose accelerator lacks it trains in fp32 and logs so)."""
    cluster = config.cluster
    device = "cuda" if cluster.gpus_per_rank > 0 else "cpu"
    world_size = cluster.trainer_ranks
    roles = {}
    for role in trained_roles(config):
        section = f"{role}_train"
        spec = getattr(config, section)
        if spec.zero_stage == 3 and world_size == 1:
            warnings.append(f"--{section}.zero_stage 3 with one trainer rank: nothing to partition over, so ZeRO-3 "
                            f"only adds gathering; stages 0-2 need the same memory on one rank")
        if spec.offload_optimizer and spec.zero_stage == 0:
            warnings.append(f"--{section}.offload_optimizer is ignored at --{section}.zero_stage 0")
        roles[role] = {"section": section, "gradient_checkpointing": spec.gradient_checkpointing,
                       "config": deepspeed_config_for(spec, world_size, device, True)}
    return {"world_size": world_size,
            "backend": "nccl (ranks on GPUs)" if device == "cuda" else "gloo (ranks on CPUs)",
            "bf16": "as asked; a rank whose accelerator lacks bf16 trains in fp32 (and logs it)",
            "roles": roles}
