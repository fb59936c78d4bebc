"""The Ray dashboard while a tiny round runs: a local Ray cluster with its dashboard on 127.0.0.1, search workers
that search a few problems and trainer ranks that take a few optimizer steps (tiny models, CPU), named as a
colocated run names them (`search-worker<i>`, `trainer-rank<i>`, calls labelled "round 1 search" and
"round 1 train_policy"); then a headless Chromium's screenshot of the dashboard's Actors page while they are up.

    python -m experiments.screenshot_dashboard [OUT.png]     # default docs/images/ray-dashboard.png

tests/test_ray_dashboard.py runs the same round and reads Ray's state API and the node's metrics endpoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUND_LABEL = "round 1"
"""The label prefix of the tiny round's calls, as the stage code builds it (`f"round {index} search"`)."""
METRICS_REPORT_INTERVAL_MS = 1000
"""How often each Ray process exports its metrics here (Ray's default is 10 s), so a reader waits a second."""


@dataclass
class TinyRound:
    """The actors of a tiny round, still up, and what they returned."""

    pool: object  # rest_mcts.workers.SearchPool
    trainers: object  # rest_mcts.train_workers.TrainerGroup
    trees: list  # search.tree.Tree, one per problem
    shards: int
    training: object  # trainers.spec.TrainResult of rank 0

    def shutdown(self) -> None:
        self.pool.shutdown()
        self.trainers.shutdown()


def auth_headers() -> dict[str, str]:
    """The header Ray's dashboard and state API ask for when token authentication is on (Ray 2.5x and later, the
    default for a local cluster): the token of `RAY_AUTH_TOKEN`, else of the file `RAY_AUTH_TOKEN_PATH`, else of
    ~/.ray/auth_token, where `ray.init` writes it; none when there is no token (authentication off)."""
    token = os.environ.get("RAY_AUTH_TOKEN", "")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not token and path.exists():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def start_local_ray() -> str:
    """Start a local two-CPU Ray cluster with its dashboard on 127.0.0.1; the dashboard's URL."""
    import ray

    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    context = ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False,
                       runtime_env={"env_vars": {"PYTHONPATH": python_path}},
                       _system_config={"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS})
    return f"http://{context.dashboard_url}"


def run_tiny_round(folder: Path, search_workers: int = 2, trainer_ranks: int = 1, problems: int = 4) -> TinyRound:
    """Search `problems` modchain problems, one per shard, on `search_workers` workers, then train the policy for
    two optimizer steps on `trainer_ranks` ranks; every actor asks for half a CPU. Checkpoints go to `folder`."""
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer
    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.tasks import get_task
    from rest_mcts.train_workers import TrainerGroup
    from rest_mcts.workers import SearchPool, search_to_file
    from search.mcts import MCTSParams
    from trainers.spec import TrainSpec

    tokenizer = build_char_tokenizer()
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, folder / "policy")
    save_checkpoint(prm_from_policy(folder / "policy", seed=1), tokenizer, folder / "prm")
    settings = SamplerSettings(str(folder / "policy"), str(folder / "prm"), "modchain", 1.0, 8, seed=5,
                               kv_store_mb=0.0)
    task = get_task("modchain")
    pool = SearchPool(settings, search_workers, 0.5, 0.0, "search", timeout_s=300)
    trainers = None
    try:
        trees = search_to_file(pool, task.problems("train", problems, 0), MCTSParams(branch=3, max_simulations=4,
                               max_depth=6), folder / "trees.jsonl", 1, f"{ROUND_LABEL} search")
        trainers = TrainerGroup(trainer_ranks, 0.5, 0.0, "trainer", timeout_s=300)
        spec = TrainSpec(micro_batch_size=2, learning_rate=3e-3, warmup_steps=0, max_steps=2)
        training = trainers.train("policy", folder / "policy", task.seed_examples(8, 0), spec,
                                  folder / "policy_trained", f"{ROUND_LABEL} train_policy")
    except BaseException:
        pool.shutdown()
        if trainers is not None:
            trainers.shutdown()
        raise
    return TinyRound(pool, trainers, trees, problems, training)  # one problem per shard


def screenshot(dashboard_url: str, out: Path, page: str = "actors") -> None:
    """A PNG of the dashboard page `page` (its path after `#/`), logged in with the token as Ray's own login does:
    the `ray-authentication-token` cookie."""
    from experiments.screenshot_tree_page import chromium

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1600, "height": 760})
        token = auth_headers().get("Authorization", "").removeprefix("Bearer ")
        if token:
            context.add_cookies([{"name": "ray-authentication-token", "value": token, "url": dashboard_url}])
        view = context.new_page()
        view.goto(f"{dashboard_url}/#/{page}", wait_until="networkidle")
        view.get_by_text("search-worker0").first.wait_for(timeout=60_000)
        out.parent.mkdir(parents=True, exist_ok=True)
        view.screenshot(path=str(out))


def main(out: Path = REPO / "docs" / "images" / "ray-dashboard.png") -> None:
    import ray

    dashboard_url = start_local_ray()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tiny = run_tiny_round(Path(folder), search_workers=2, trainer_ranks=2)
            try:
                screenshot(dashboard_url, out)
            finally:
                tiny.shutdown()
    finally:
        ray.shutdown()
    print(f"{out} ({out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:2]))
