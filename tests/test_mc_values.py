"""Monte Carlo step labels (`values.target` mc_hard, mc_soft, omega) through the real CLI: round 0's bootstrap
trees labelled by completions from the warm-started policy on the search workers, their tokens counted, the PRM
trained on them."""

from __future__ import annotations

import json

import pytest

from tests.test_iterate import TINY, finish, iterate, kill_after_stage


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mc_soft", "omega"])
def test_monte_carlo_labels_train_the_first_prm(tmp_path, target):
    # Without the step check (which ends a wrong step's path at once) and with a policy warm-started long enough to
    # write several steps, some prefixes are open (`values.nodes all`: also those with nothing finished below) and
    # some wrong solutions have a first wrong step to search for.
    args = ["--rounds", "0", "--run-dir", "runs", *TINY, "--eval.pass_at_k", "0",
            "--policy_train.warm_start_steps", "40", "--search.max_simulations", "4", "--search.step_check", "false",
            "--values.nodes", "all", "--values.target", target, "--values.mc_completions", "2"]
    code, output = finish(iterate(args, tmp_path))
    assert code == 0, output
    round_ = tmp_path / "runs" / "default" / "round_00"
    metrics = json.loads((round_ / "eval.json").read_text())
    examples = [json.loads(line) for line in (round_ / "value_examples.jsonl").read_text().splitlines()]
    assert len(examples) == metrics["examples/value"] > 0
    assert metrics["value/mc_tokens"] > 0 and metrics["value/mc_prefixes"] > 0
    assert all(0.0 <= example["target"] <= 1.0 for example in examples)
    assert all(example["step_correct"] is not None for example in examples)  # synthetic: true labels beside
    assert len({(e["problem_id"], tuple(e["steps"])) for e in examples}) == len(examples)
    if target == "mc_soft":
        assert {example["target"] for example in examples} <= {0.0, 0.5, 1.0}  # two completions each
    else:  # each wrong solution ends its labels at its first wrong step, labelled 0
        assert any(example["target"] == 0.0 for example in examples)
    assert metrics["prm/steps"] == 4 and (round_ / "prm").is_dir()
    if target == "omega":  # killed before its labels, the run labels again on --resume and ends as the whole one
        killed = kill_after_stage([*args, "--experiment", "killed"], tmp_path,
                                  tmp_path / "runs" / "killed" / "round_00", "search")
        code, output = finish(iterate(["--resume", "--run-dir", "runs", "--experiment", "killed"], tmp_path))
        assert code == 0, output
        for name in ("value_examples.jsonl", "eval.json"):
            assert (killed / name).read_bytes() == (round_ / name).read_bytes(), name
