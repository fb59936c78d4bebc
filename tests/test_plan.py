"""The placement plan (`rest_mcts.plan`): groups, actor shares, node layouts, DeepSpeed configs and the checks of
the cluster section, resolved without Ray."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rest_mcts.config import ClusterConfig, ConfigError, RunConfig
from rest_mcts.plan import DRIVER_STAGES, STAGE_ACTORS, group_plans, placement_plan
from rest_mcts.preflight import validate
from trainers.engine import deepspeed_config


def with_cluster(config: RunConfig | None = None, **changes) -> RunConfig:
    config = config or RunConfig()
    return replace(config, cluster=replace(config.cluster, **changes))


GPU_NODES = dict(ray_address="auto", nodes=2, gpus_per_node=8, cpus_per_node=64, colocate=False, search_workers=16,
                 gpus_per_worker=1, cpus_per_worker=2, trainer_ranks=16, gpus_per_rank=1, cpus_per_rank=4)


def test_the_default_run_keeps_one_colocation_group_of_a_cpu_per_bundle_packed():
    (group,) = group_plans(ClusterConfig())
    assert (group.name, group.count, group.bundle, group.strategy) == ("colocation", 2, {"CPU": 1}, "PACK")
    assert group.actor_ask(1.0, 0.0) == {"num_cpus": 0.5, "num_gpus": 0}


def test_colocated_actors_ask_half_of_their_own_resources_inside_the_larger_bundle():
    plan = placement_plan(with_cluster(search_workers=2, gpus_per_worker=0.5, trainer_ranks=1, gpus_per_rank=0.5,
                                       cpus_per_worker=4, cpus_per_rank=2))
    assert plan["placement_groups"]["colocation"]["bundle"] == {"CPU": 4, "GPU": 0.5}
    assert plan["actors"]["search workers"]["each_asks"] == {"CPU": 2, "GPU": 0.25}
    assert plan["actors"]["trainer ranks"]["each_asks"] == {"CPU": 1, "GPU": 0.25}
    assert plan["resources"]["needed"] == {"CPU": 8, "GPU": 1}


def test_separate_groups_are_needed_one_at_a_time():
    plan = placement_plan(with_cluster(**GPU_NODES))
    assert set(plan["placement_groups"]) == {"search", "trainer"}
    assert plan["resources"]["needed"] == {"CPU": 64, "GPU": 16}


@pytest.mark.parametrize("strategy, node0, node1", [
    ("PACK", "0-7", "8-15"),
    ("SPREAD", "0, 2, 4, 6, 8, 10, 12, 14", "1, 3, 5, 7, 9, 11, 13, 15"),
])
def test_the_layout_follows_the_strategy(strategy, node0, node1):
    layout = placement_plan(with_cluster(**GPU_NODES, placement_strategy=strategy))["layout"]["trainer"]
    assert layout == {"node 0": {"bundles": node0, "CPU": 32, "GPU": 8},
                      "node 1": {"bundles": node1, "CPU": 32, "GPU": 8}}


def test_pack_fills_the_first_node_before_the_next():
    layout = placement_plan(with_cluster(**{**GPU_NODES, "trainer_ranks": 10}))["layout"]["trainer"]
    assert layout["node 0"]["bundles"] == "0-7" and layout["node 1"]["bundles"] == "8-9"


def test_bundles_that_fit_in_total_but_not_node_by_node_are_refused():
    # 3 bundles of 3 GPUs: 9 <= 2 x 5, but a node of 5 holds one of them, so the third has nowhere to go.
    config = with_cluster(**{**GPU_NODES, "gpus_per_node": 5, "search_workers": 4, "trainer_ranks": 3,
                             "gpus_per_rank": 3})
    with pytest.raises(ConfigError, match="do not fit --cluster.nodes 2"):
        placement_plan(config)


def test_ranks_sharing_a_gpu_are_refused_but_one_rank_may_share():
    with pytest.raises(ConfigError, match="NCCL"):
        placement_plan(with_cluster(trainer_ranks=2, gpus_per_rank=0.5, gpus_per_worker=0.5))
    placement_plan(with_cluster(trainer_ranks=1, gpus_per_rank=0.5, gpus_per_worker=0.5))
    # Colocated, a rank's bundle is as large as the worker's: a whole GPU each.
    placement_plan(with_cluster(trainer_ranks=2, gpus_per_rank=0.5, gpus_per_worker=1))


def test_the_deepspeed_config_is_the_engines_for_gpu_ranks_with_bf16_as_asked():
    config = with_cluster(**GPU_NODES)
    config = replace(config, policy_train=replace(config.policy_train, zero_stage=3, bf16=True,
                                                  gradient_checkpointing=True))
    policy = placement_plan(config)["deepspeed"]["roles"]["policy"]
    assert policy["config"] == deepspeed_config(config.policy_train, 16, device="cuda", bf16_supported=True)
    assert policy["config"]["bf16"] == {"enabled": True} and policy["gradient_checkpointing"]
    assert "torch_adam" not in policy["config"]["optimizer"]["params"]  # DeepSpeed's fused Adam on GPU


def test_the_verifier_gets_a_deepspeed_config_only_when_the_rounds_train_it():
    config = RunConfig()
    assert set(placement_plan(config)["deepspeed"]["roles"]) == {"policy", "prm"}
    config = replace(config, verifier=replace(config.verifier, train_in_rounds=True, kind="genrm"))
    assert set(placement_plan(config)["deepspeed"]["roles"]) == {"policy", "prm", "verifier"}


def test_zero3_on_one_rank_is_allowed_with_a_warning():
    config = with_cluster(trainer_ranks=1)
    config = replace(config, policy_train=replace(config.policy_train, zero_stage=3))
    validate(config)
    assert any("--policy_train.zero_stage 3 with one trainer rank" in line
               for line in placement_plan(config)["warnings"])


def test_every_stage_function_is_known_to_the_plan():
    from rest_mcts.stages import ROUND_STAGES, WARM_START_STAGES, train_verifier

    bodies = [body for _, body in WARM_START_STAGES] + [body for stages in ROUND_STAGES.values() for _, body in stages]
    for body in [*bodies, train_verifier]:
        assert body.__name__ in STAGE_ACTORS or body.__name__ in DRIVER_STAGES, body.__name__


@pytest.mark.parametrize("changes, message", [
    ({"nodes": 0}, "--cluster.nodes 0: expected 1 or more"),
    ({"nodes": 2}, "--cluster.nodes 2: a local Ray cluster has one node"),
    ({"placement_strategy": "pack"}, "--cluster.placement_strategy 'pack'"),
    ({"cpus_per_worker": 0.0}, "--cluster.cpus_per_worker 0.0: expected a positive number"),
    ({"gpus_per_rank": -1.0}, "--cluster.gpus_per_rank -1.0: expected 0 or more"),
])
def test_cluster_values_no_run_can_use_are_refused_naming_the_flag(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(with_cluster(**changes))
