"""Self-Rewarding (`--method self_rewarding`) through the real CLI: sampling matched to a ReST-MCTS* run's search
tokens, every solution judged by the previous policy, DPO on the judged pairs, the PRM carried forward; on the
default task and on GSM8K's data. Plus the pair rule on its own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.test_iterate import TINY, finish, iterate, kill_after_stage


@pytest.mark.slow
def test_self_rewarding_matches_the_search_tokens_judges_every_sample_and_trains_the_policy_with_dpo(tmp_path):
    base = ["--rounds", "1", "--run-dir", "runs", *TINY, "--eval.pass_at_k", "0"]
    code, output = finish(iterate([*base, "--experiment", "mcts"], tmp_path))
    assert code == 0, output
    code, output = finish(iterate([*base, "--experiment", "sr", "--method", "self_rewarding",
                                   "--self_rewarding.match_tokens_of", "runs/mcts", "--self_rewarding.margin", "0"],
                                  tmp_path))
    assert code == 0, output
    mcts, sr = (tmp_path / "runs" / name / "round_01" for name in ("mcts", "sr"))
    target = json.loads((mcts / "eval.json").read_text())["search/tokens"]
    metrics = json.loads((sr / "eval.json").read_text())
    sampled = sum(json.loads(line)["tokens"] for line in (sr / "samples.jsonl").read_text().splitlines())
    assert sampled == metrics["sample/tokens"] and metrics["sample/target_tokens"] == target
    generated = sampled + metrics["judge/tokens_generated"]
    assert abs(generated - target) <= 0.05 * target, (generated, target)

    judged = [json.loads(line) for line in (sr / "judged.jsonl").read_text().splitlines()]
    assert sum(len(row["solutions"]) for row in judged) == metrics["judge/solutions"] > 0
    assert all(0.0 <= solution["score"] <= 1.0 for row in judged for solution in row["solutions"])
    # the direct judge writes one verdict per solution
    assert metrics["judge/tokens_generated"] == metrics["judge/solutions"]
    pairs = [json.loads(line) for line in (sr / "preference_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == metrics["pairs/count"] == metrics["policy/pairs"] > 0
    by_problem = {row["problem_id"]: row["solutions"] for row in judged}
    for pair in pairs:
        scores = {tuple(s["steps"]): s["score"] for s in by_problem[pair["problem_id"]]}
        assert scores[tuple(pair["chosen"])] == max(scores.values())
        assert scores[tuple(pair["rejected"])] == min(scores.values())
    assert metrics["policy/steps"] == 4  # policy_train.max_steps, as DPO steps
    before = (tmp_path / "runs" / "sr" / "round_00" / "policy" / "model.safetensors").read_bytes()
    assert (sr / "policy" / "model.safetensors").read_bytes() != before
    assert (sr / "prm" / "model.safetensors").read_bytes() == (
        tmp_path / "runs" / "sr" / "round_00" / "prm" / "model.safetensors").read_bytes()
    assert not (sr / "trees.jsonl").exists() and "test/greedy/accuracy" in metrics

    # Killed once its samples are in, the run judges them again on --resume and ends as the uninterrupted one.
    args = [*base, "--experiment", "killed", "--method", "self_rewarding", "--self_rewarding.match_tokens_of",
            "runs/mcts", "--self_rewarding.margin", "0"]
    killed = kill_after_stage(args, tmp_path, tmp_path / "runs" / "killed" / "round_01", "sample")
    assert not (killed / "judged.jsonl").exists()
    code, output = finish(iterate(["--resume", "--run-dir", "runs", "--experiment", "killed"], tmp_path))
    assert code == 0, output
    assert (killed / "eval.json").read_bytes() == (sr / "eval.json").read_bytes()
    assert (killed / "judged.jsonl").read_bytes() == (sr / "judged.jsonl").read_bytes()


@pytest.mark.slow
def test_self_rewarding_runs_on_a_data_task_judged_by_the_genrm_verifier_trained_in_round_0(tmp_path):
    from tests.test_data_run import save_gsm8k_policy

    save_gsm8k_policy(tmp_path / "policy")
    code, output = finish(iterate([
        "--task", "gsm8k", "--model.policy_model", str(tmp_path / "policy"), "--method", "self_rewarding",
        "--rounds", "1", "--run-dir", "runs",
        "--task.seed_problems", "32", "--task.train_problems", "40", "--task.problems_per_round", "6",
        "--task.test_problems", "4", "--eval.dev_problems", "4", "--policy_train.warm_start_steps", "2",
        "--prm_train.warm_start_steps", "2", "--policy_train.max_steps", "2", "--search.max_simulations", "2",
        "--eval.max_simulations", "2", "--eval.pass_at_k", "0", "--search.max_depth", "3",
        "--cluster.problems_per_task", "3", "--self_rewarding.samples_per_problem", "3",
        "--self_rewarding.margin", "0", "--self_rewarding.sft_weight", "0.5", "--self_rewarding.judge", "verifier",
        "--verifier.train_in_rounds", "true", "--verifier.kind", "genrm", "--verifier_train.max_steps", "2",
        "--verifier.solution_weight", "0"],
        tmp_path))
    assert code == 0, output
    run = tmp_path / "runs" / "default"
    round_ = run / "round_01"
    metrics = json.loads((round_ / "eval.json").read_text())
    assert metrics["sample/per_problem"] == 3 and metrics["judge/solutions"] > 0
    # The judge is round 0's GenRM verifier (GSM8K has no written checks for GenRM-CoT): one verdict per solution
    assert (run / "round_00" / "verifier" / "config.json").exists()
    assert metrics["judge/tokens_generated"] == metrics["judge/solutions"]
    judged = [json.loads(line) for line in (round_ / "judged.jsonl").read_text().splitlines()]
    assert sum(len(row["solutions"]) for row in judged) == metrics["judge/solutions"]
    assert all(0.0 <= solution["score"] <= 1.0 for row in judged for solution in row["solutions"])
    assert (round_ / "preference_pairs.jsonl").exists() and (round_ / "policy").is_dir()
    assert 0.0 <= metrics["test/mcts/accuracy"] <= 1.0


def test_each_problem_prefers_its_highest_judged_solution_to_its_lowest_beyond_the_margin(tmp_path):
    from lm.data import PreferencePair, read_jsonl, write_jsonl
    from rest_mcts.config import RunConfig, SelfRewardingConfig
    from rest_mcts.stages.self_rewarding import distinct_solutions, preference_pairs

    def solution(steps, score, correct):
        return {"steps": steps, "score": score, "correct": correct}

    write_jsonl(tmp_path / "judged.jsonl", [
        {"problem_id": "a", "solutions": [solution(["1\n"], 0.4, False), solution(["2\n"], 0.9, True),
                                          solution(["3\n"], 0.1, False)]},
        {"problem_id": "b", "solutions": [solution(["1\n"], 0.50, True), solution(["2\n"], 0.52, False)]},
        {"problem_id": "c", "solutions": [solution(["1\n"], 0.7, True)]},  # one solution: no pair
    ])
    problems = [SimpleNamespace(id=name) for name in "abc"]
    ctx = SimpleNamespace(config=RunConfig(self_rewarding=SelfRewardingConfig(margin=0.05)),
                          problems=SimpleNamespace(train=problems), task=SimpleNamespace(format_prompt=lambda p: p.id))
    metrics = preference_pairs(ctx, SimpleNamespace(path=tmp_path))
    assert list(read_jsonl(tmp_path / "preference_pairs.jsonl", PreferencePair)) == [
        PreferencePair("a", "a", ("2\n",), ("3\n",))]  # b's scores differ by less than the margin
    assert metrics == {"pairs/count": 1.0, "pairs/chosen_correct_rate": 1.0, "pairs/right_order_rate": 1.0}
    rows = [{"problem_id": "a", "solutions": [solution(["1\n"], 0, True), solution(["1\n"], 0, True)]},
            {"problem_id": "a", "solutions": [solution(["2\n"], 0, False), solution(["1\n"], 0, True)]}]
    assert [s["steps"] for s in distinct_solutions(rows)["a"]] == [["1\n"], ["2\n"]]



def test_the_oracle_judge_scores_each_solution_by_its_grade_without_a_model_or_tokens(tmp_path):
    from lm.data import read_jsonl, write_jsonl
    from rest_mcts.config import RunConfig, SelfRewardingConfig
    from rest_mcts.stages.self_rewarding import judge_samples

    write_jsonl(tmp_path / "samples.jsonl", [
        {"problem_id": "a", "solutions": [{"steps": ["1\n"], "correct": False}, {"steps": ["2\n"], "correct": True},
                                          {"steps": ["1\n"], "correct": False}]},
        {"problem_id": "b", "solutions": []}])
    problems = [SimpleNamespace(id=name) for name in "ab"]
    ctx = SimpleNamespace(config=RunConfig(self_rewarding=SelfRewardingConfig(judge="oracle")),
                          problems=SimpleNamespace(for_round=lambda index, count: problems))
    metrics = judge_samples(ctx, SimpleNamespace(path=tmp_path, index=1))
    assert metrics == {"judge/solutions": 2.0, "judge/tokens_generated": 0.0, "judge/tokens_read": 0.0,
                       "judge/auroc": 1.0}
    [row] = list(read_jsonl(tmp_path / "judged.jsonl"))
    assert [(s["steps"], s["score"]) for s in row["solutions"]] == [(["1\n"], 0.0), (["2\n"], 1.0)]
