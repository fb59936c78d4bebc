"""The training loop reports every optimizer step to its caller (`trainers.engine.StepCallback`), as the trainer
ranks report them to Ray's metrics."""

from __future__ import annotations

import pytest

from tests.trainers.test_trainers import policy_examples, policy_spec, save_tiny_policy, single_rank  # noqa: F401


@pytest.mark.slow
def test_each_optimizer_step_is_reported_once_with_the_loss_the_result_holds(tmp_path, single_rank):  # noqa: F811
    from trainers.policy_sft import train_policy

    reports = []
    result = train_policy(save_tiny_policy(tmp_path / "policy0"), policy_examples(), policy_spec(max_steps=3),
                          tmp_path / "policy1", 0, 1, on_step=lambda *report: reports.append(report))

    assert reports == [(step, 3, loss) for step, loss in zip((1, 2, 3), result.losses, strict=True)]
