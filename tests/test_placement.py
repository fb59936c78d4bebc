"""Colocation: search workers and trainer ranks share one placement group and are up at the same time."""

from __future__ import annotations

import pytest

from lm.data import PolicyExample
from trainers.engine import TrainSpec


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    from lm.build import build_tiny_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    path = tmp_path_factory.mktemp("colocation") / "policy"
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, path)
    return path


def test_a_placement_group_that_does_not_fit_fails_with_the_flags_to_change(ray_cluster):
    from rest_mcts.placement import Colocation

    with pytest.raises(RuntimeError, match="could not place 3 bundles.*--cluster.search_workers"):
        Colocation(3, 1.0, 0.0, 2, 1.0, 0.0, timeout_s=2)
    assert ray_cluster.available_resources().get("CPU") == 2  # the unplaced group was removed


@pytest.mark.slow
def test_colocated_workers_and_ranks_are_up_together_and_both_serve(ray_cluster, policy_path, tmp_path):
    from rest_mcts.placement import Colocation
    from rest_mcts.search_models import SamplerSettings
    from rest_mcts.tasks import get_task
    from rest_mcts.train_workers import TrainerGroup
    from rest_mcts.workers import SearchPool, greedy_results

    task = get_task("modchain")
    problems = task.problems("test", 4, 0)
    colocation = Colocation(2, 1.0, 0.0, 2, 1.0, 0.0, timeout_s=120)
    # Two workers and two ranks of one CPU each on a 2-CPU cluster: only colocated do they all fit.
    pool = SearchPool(SamplerSettings(str(policy_path), "", task.name, 1.0, 16, seed=0), 2, 1.0, 0.0, "test-search",
                      timeout_s=240, placement=colocation)
    group = TrainerGroup(2, 1.0, 0.0, "test-colocated", timeout_s=240, placement=colocation)
    try:
        before = greedy_results(pool, problems, 2, 2, "before")
        examples = [PolicyExample(p.id, task.format_prompt(p), ("1+2=3;",)) for p in problems]
        spec = TrainSpec(micro_batch_size=2, learning_rate=1e-2, warmup_steps=0, max_steps=3)
        group.train("policy", str(policy_path), examples, spec, str(tmp_path / "trained"), "test train")
        # The same workers, still up, switch to the trained checkpoint.
        pool.settings = SamplerSettings(str(tmp_path / "trained"), "", task.name, 1.0, 16, seed=0)
        after = greedy_results(pool, problems, 2, 2, "after")
        assert [r.problem_id for r in after] == [p.id for p in problems]
        assert [r.steps for r in after] != [r.steps for r in before]
        assert ray_cluster.available_resources().get("CPU", 0) == 0
    finally:
        pool.shutdown()
        group.shutdown()
        colocation.remove()
