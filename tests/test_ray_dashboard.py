"""A tiny round in a local Ray cluster with its dashboard on 127.0.0.1 (experiments/screenshot_dashboard.py's):
Ray's state API lists its actors by role, and the node's metrics endpoint shows what they reported under the
round's labels: the trees finished, the tokens generated, the training steps and the loss."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from experiments.screenshot_dashboard import ROUND_LABEL, auth_headers, run_tiny_round, start_local_ray

pytestmark = pytest.mark.slow

SEARCH = f"{ROUND_LABEL} search"
TRAIN = f"{ROUND_LABEL} train_policy"


@pytest.fixture(scope="module")
def tiny_round(tmp_path_factory):
    """(dashboard URL, the round's actors still up and their results): two search workers, one trainer rank."""
    ray = pytest.importorskip("ray")
    dashboard_url = start_local_ray()
    try:
        tiny = run_tiny_round(tmp_path_factory.mktemp("round"), search_workers=2, trainer_ranks=1)
        yield dashboard_url, tiny
        tiny.shutdown()
    finally:
        ray.shutdown()


def get(url: str, headers: dict[str, str] | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
        return response.read().decode("utf-8")


def scrape(port: int) -> list:
    """Every sample the node's Prometheus endpoint shows now."""
    from prometheus_client.parser import text_string_to_metric_families

    return [sample for family in text_string_to_metric_families(get(f"http://127.0.0.1:{port}/metrics"))
            for sample in family.samples]


def total(samples: list, name: str, **tags: str) -> float:
    """Sum of the samples of `name` (as Ray exports it: `ray_` prefix, `_total` on counters) with these tags."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in tags.items()))


def test_the_state_api_lists_the_search_workers_and_trainer_ranks_by_name(tiny_round):
    dashboard_url, _ = tiny_round
    answer = json.loads(get(f"{dashboard_url}/api/v0/actors?limit=1000", auth_headers()))
    alive = {actor["name"]: actor["class_name"] for actor in answer["data"]["result"]["result"]
             if actor["state"] == "ALIVE"}
    assert alive == {"search-worker0": "SearchWorker", "search-worker1": "SearchWorker",
                     "trainer-rank0": "TrainerRank"}


def test_the_metrics_endpoint_shows_the_rounds_trees_tokens_steps_and_loss(tiny_round):
    import ray

    _, tiny = tiny_round
    expected = {
        ("ray_rest_mcts_trees_finished_total", SEARCH): float(len(tiny.trees)),
        ("ray_rest_mcts_tokens_generated_total", SEARCH): float(sum(tree.tokens_used for tree in tiny.trees)),
        ("ray_rest_mcts_shard_seconds_count", SEARCH): float(tiny.shards),
        ("ray_rest_mcts_train_steps_total", TRAIN): float(tiny.training.steps),
        ("ray_rest_mcts_train_total_steps", TRAIN): float(tiny.training.steps),
    }
    (node,) = ray.nodes()
    deadline = time.monotonic() + 60  # each process exports every METRICS_REPORT_INTERVAL_MS
    while True:
        samples = scrape(node["MetricsExportPort"])
        found = {(name, label): total(samples, name, label=label) for name, label in expected}
        if found == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == expected
    assert expected["ray_rest_mcts_tokens_generated_total", SEARCH] > 0
    workers = {s.labels["worker"] for s in samples if s.name == "ray_rest_mcts_trees_finished_total"}
    assert workers == {"0", "1"}  # each worker searched shards, under its own index
    assert total(samples, "ray_rest_mcts_shard_seconds_count", role="search_worker", method="search") == tiny.shards
    loss = total(samples, "ray_rest_mcts_train_loss", role="trainer_rank", label=TRAIN, worker="0")
    assert loss == pytest.approx(tiny.training.last_loss, rel=1e-4)  # one rank: its loss is the group's
