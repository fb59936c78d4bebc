"""A search worker killed mid-round: Ray restarts it, its unfinished shard is searched again, and the round ends
with exactly one tree per problem, the same trees as a round nobody interrupted."""

from __future__ import annotations

import json
import os
import signal

import pytest

pytestmark = pytest.mark.slow

def search_round(settings, path, kill_after_first: bool):
    """Search 12 problems in 12 shards on two workers into `path`; with `kill_after_first`, SIGKILL the process
    of the worker still searching when the first shard comes back. Returns (trees, the killed pid or None,
    the pids of the workers at the end)."""
    import ray

    from rest_mcts.tasks import get_task
    from rest_mcts.workers import SearchPool, search_to_file
    from search.mcts import MCTSParams

    problems = get_task("modchain").problems("train", 12, 0)
    pool = SearchPool(settings, 2, 1.0, 0.0, f"death-{path.stem}", timeout_s=300)
    killed: list[int] = []
    original_map = pool.map

    def map_and_kill(method, shards, *args, on_result=None, label=""):
        def kill_busy_worker(index, result):
            on_result(index, result)
            if kill_after_first and not killed:
                (busy,) = pool.in_flight  # the other worker, mid-shard
                killed.append(ray.get(pool.workers[busy].pid.remote()))
                os.kill(killed[0], signal.SIGKILL)

        return original_map(method, shards, *args, on_result=kill_busy_worker, label=label)

    pool.map = map_and_kill
    try:
        trees = search_to_file(pool, problems, MCTSParams(branch=3, max_simulations=6, max_depth=6), path,
                               problems_per_task=1, label="death")
        pids = ray.get([worker.pid.remote() for worker in pool.workers])
    finally:
        pool.shutdown()
    return trees, (killed[0] if killed else None), pids


def test_a_killed_search_worker_is_restarted_and_the_round_has_one_tree_per_problem(ray_cluster, search_settings,
                                                                                   tmp_path):
    trees, killed, pids = search_round(search_settings, tmp_path / "killed.jsonl", kill_after_first=True)
    assert killed is not None and killed not in pids  # the worker died and a new process took its place

    lines = (tmp_path / "killed.jsonl").read_text().splitlines()
    ids = [json.loads(line)["problem_id"] for line in lines]
    assert len(ids) == 12 and len(set(ids)) == 12  # none lost, none duplicated
    assert [tree.problem_id for tree in trees] == sorted(ids, key=[t.problem_id for t in trees].index)

    reference, _, _ = search_round(search_settings, tmp_path / "whole.jsonl", kill_after_first=False)
    assert [tree.to_dict() for tree in trees] == [tree.to_dict() for tree in reference]  # the retried shard too
