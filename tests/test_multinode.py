"""A Ray cluster of two nodes on this machine (`ray.cluster_utils.Cluster`): the CLI joined to it places the search
workers and trainer ranks as `cluster.*` says and finishes a round, and a worker node lost mid-search costs the
round no tree: every problem ends with exactly one, the same as a round nobody interrupted."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_iterate import TINY, finish, iterate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def head():
    """The head node of a Ray cluster (2 logical CPUs, no dashboard) whose workers import this checkout. Its
    temporary folder is a private one: `Cluster` writes the address of its head into `<tmp>/ray/ray_current_cluster`,
    where a plain `ray.init()` in another process on this machine would find it and join it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    root = tempfile.mkdtemp(prefix="rmn", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    environment = {"RAY_TMPDIR": root,  # inherited by every node, worker and CLI started below
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=2, include_dashboard=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def worker_node(head):
    """A second node of one logical CPU, removed after the test if the test left it up. Each waits until Ray's
    control store counts the live nodes the test expects, so that no placement group sees a node gone already."""
    node = head.add_node(num_cpus=1)
    head.wait_for_nodes()
    yield node
    if node in head.worker_nodes:
        head.remove_node(node)
    head.wait_for_nodes()


def wait_until(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout_s:.0f} s"
        time.sleep(0.2)


def actor_nodes(cluster, names: list[str]) -> list[str]:
    """The node id each named actor ran on (live or dead), from the cluster's actor table."""
    table = {actor["Name"]: actor["Address"]["NodeID"] for actor in cluster.global_state.actor_table(None).values()
             if actor["Name"] in names}
    return [table[name] for name in names]


def test_a_run_joined_to_a_two_node_cluster_puts_bundle_i_on_a_node_of_its_own(head, worker_node, tmp_path):
    """STRICT_SPREAD, colocated: search worker i and trainer rank i share bundle i, and the two bundles sit on the
    two nodes; the run finishes its round there. The CLI runs in another folder than the nodes were started in, so
    the relative run folder also checks that the workers work in the driver's folder."""
    args = ["--rounds", "1", "--run-dir", "runs", "--experiment", "nodes", *TINY, "--ray-address", head.address,
            "--cluster.nodes", "2", "--cluster.placement_strategy", "STRICT_SPREAD", "--eval.pass_at_k", "0",
            "--logging.wandb_mode", "disabled", "--logging.wandb_trees", "0"]
    code, output = finish(iterate(args, tmp_path))
    assert code == 0, output
    run = tmp_path / "runs" / "nodes"
    assert (run / "round_01" / "DONE").exists()
    assert len((run / "round_01" / "trees.jsonl").read_text().splitlines()) == 12

    nodes = {head.head_node.node_id, worker_node.node_id}
    workers = actor_nodes(head, ["search-worker0", "search-worker1"])
    ranks = actor_nodes(head, ["trainer-rank0", "trainer-rank1"])
    assert set(workers) == nodes and ranks == workers  # one bundle a node; worker i beside rank i
    logged = re.search(r"placement group nodes-colocation: 2 bundles .* STRICT_SPREAD, on nodes \['(\w+)', '(\w+)'\]",
                       output)
    assert logged, output
    assert list(logged.groups()) == workers


def test_a_node_lost_mid_search_leaves_one_tree_per_problem_the_same_as_an_uninterrupted_round(
        head, worker_node, search_settings, tmp_path):
    """Two search workers in a SPREAD placement group, one on each node. The round is searched once whole, then
    again into a new file while the worker node is removed as soon as its worker is busy on a shard: Ray places
    that bundle again on the head, restarts the worker there and retries its shard."""
    import ray

    from rest_mcts.config import ClusterConfig
    from rest_mcts.placement import Placement
    from rest_mcts.plan import SEARCH_WORKER, group_of
    from rest_mcts.tasks import get_task
    from rest_mcts.workers import SearchPool, search_to_file
    from search.mcts import MCTSParams

    ray.init(address=head.address, log_to_driver=False)
    # SPREAD is best effort: it spans both nodes only once Ray sees both with room
    wait_until(lambda: ray.available_resources().get("CPU") == 3, "3 CPUs free on the two nodes")
    problems = get_task("modchain").problems("train", 8, 0)
    params = MCTSParams(branch=3, max_simulations=6, max_depth=6)
    placement = Placement(group_of(SEARCH_WORKER, ClusterConfig(colocate=False, placement_strategy="SPREAD")),
                          timeout_s=60, name="lose-a-node")
    pool = SearchPool(search_settings, 2, 1.0, 0.0, "lose-a-node", timeout_s=300, placement=placement)
    try:
        bundle_nodes = placement.bundle_nodes()
        assert set(bundle_nodes) == {head.head_node.node_id, worker_node.node_id}, (bundle_nodes, ray.nodes())
        doomed = bundle_nodes.index(worker_node.node_id)  # the worker on the node that goes
        whole = search_to_file(pool, problems, params, tmp_path / "whole.jsonl", problems_per_task=1, label="whole")
        doomed_pid = ray.get(pool.workers[doomed].pid.remote())

        original_map, removed = pool.map, []

        def map_and_remove_node(method, shards, *args, on_result=None, label=""):
            def remove_node_under_busy_worker(index, result):
                on_result(index, result)
                if not removed and doomed in pool.in_flight:
                    head.remove_node(worker_node)
                    removed.append(pool.in_flight[doomed])

            return original_map(method, shards, *args, on_result=remove_node_under_busy_worker, label=label)

        pool.map = map_and_remove_node
        trees = search_to_file(pool, problems, params, tmp_path / "lost.jsonl", problems_per_task=1, label="lost")
        assert removed, "the worker on the removed node was never busy"
        assert placement.bundle_nodes() == [head.head_node.node_id] * 2  # the lost bundle was placed again
        assert ray.get(pool.workers[doomed].pid.remote()) != doomed_pid  # its worker was restarted there
    finally:
        pool.shutdown()
        placement.remove()
        ray.shutdown()

    ids = [json.loads(line)["problem_id"] for line in (tmp_path / "lost.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(problem.id for problem in problems)  # none lost, none duplicated
    assert [tree.to_dict() for tree in trees] == [tree.to_dict() for tree in whole]  # the retried shard too
