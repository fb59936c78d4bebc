"""Two DeepSpeed ranks in two Ray actors train in lock step and save one checkpoint."""

from __future__ import annotations

import os

import pytest

from tests.trainers.test_trainers import policy_examples, save_tiny_policy, save_tiny_prm, value_examples
from trainers.engine import TrainSpec


@pytest.fixture(scope="module")
def trainer_group(ray_cluster):
    from rest_mcts.train_workers import TrainerGroup

    group = TrainerGroup(world_size=2, num_cpus_per_rank=1, name_prefix="test-trainer", timeout_s=240)
    yield group
    group.shutdown()


def checksum_of(model) -> float:
    return sum(p.detach().double().sum().item() for p in model.parameters())


@pytest.mark.slow
def test_trainer_actors_are_named_after_their_rank(ray_cluster, trainer_group):
    for rank in range(2):
        assert ray_cluster.get_actor(f"test-trainer-rank{rank}") is not None


@pytest.mark.slow
def test_two_ranks_end_policy_training_with_identical_parameters_and_save_them(tmp_path, trainer_group):
    from transformers import AutoModelForCausalLM

    model_path = save_tiny_policy(tmp_path / "policy0")
    spec = TrainSpec(micro_batch_size=2, learning_rate=3e-3, warmup_steps=0, max_steps=2)
    result = trainer_group.train("policy", str(model_path), policy_examples(), spec, str(tmp_path / "policy1"))

    assert result.steps == 2 and len(result.losses) == 2
    rank0, rank1 = trainer_group.parameter_checksums()
    assert rank0 == rank1
    assert rank0 != checksum_of(AutoModelForCausalLM.from_pretrained(model_path))
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "policy1")
    assert checksum_of(saved) == pytest.approx(rank0, abs=1e-6)


@pytest.mark.slow
def test_two_ranks_train_the_prm_and_save_it(tmp_path, trainer_group):
    from transformers import AutoModelForTokenClassification

    model_path = save_tiny_prm(tmp_path / "prm0")
    spec = TrainSpec(micro_batch_size=2, learning_rate=3e-3, warmup_steps=0, max_steps=2)
    result = trainer_group.train("prm", str(model_path), value_examples(), spec, str(tmp_path / "prm1"))

    rank0, rank1 = trainer_group.parameter_checksums()
    assert rank0 == rank1
    saved = AutoModelForTokenClassification.from_pretrained(tmp_path / "prm1")
    assert checksum_of(saved) == pytest.approx(rank0, abs=1e-6)
    assert result.tokens > 0


@pytest.mark.slow
def test_a_rank_killed_mid_training_fails_the_call_naming_the_rank(tmp_path, ray_cluster):
    """Rank 1's process killed once training has begun: the call fails with the rank's number (a RuntimeError,
    not the TimeoutError of the deadline) and the other rank, blocked in a collective, is stopped."""
    import signal
    import threading
    import time

    from rest_mcts.train_workers import TrainerGroup
    from trainers.engine import progress_path

    # no CPUs asked: the module's group holds the cluster's two
    group = TrainerGroup(world_size=2, num_cpus_per_rank=0, name_prefix="doomed-trainer", timeout_s=600)
    model_path = save_tiny_policy(tmp_path / "policy0")
    spec = TrainSpec(micro_batch_size=2, learning_rate=3e-3, warmup_steps=0, max_steps=400)
    pid = ray_cluster.get(group.ranks[1].pid.remote())
    log = progress_path(tmp_path / "policy1")

    def kill_once_training() -> None:
        while not log.exists():
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_once_training, daemon=True).start()
    with pytest.raises(RuntimeError, match=r"trainer rank 1 of 2 died"):
        group.train("policy", str(model_path), policy_examples(), spec, str(tmp_path / "policy1"))
    assert group.ranks == []  # the group was stopped
