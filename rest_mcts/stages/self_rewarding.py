"""Self-Rewarding's stages (Yuan et al. 2024, as ReST-MCTS* compares against it): after ReST-EM's sampling, a model
judges every sampled solution (no oracle), each problem's highest judged solution is preferred to its lowest, and
the policy trains on those pairs with DPO. The oracle's grades are read only to report how right the judge was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lm.data import PreferencePair, read_jsonl, write_jsonl
from rest_mcts.round_metrics import auroc
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context
from rest_mcts.stages.training import keep_model, train
from rest_mcts.workers import shard


def judge_of(ctx: Context, round_: Round):
    """The judge's checkpoint and verifier settings: the previous round's policy read as LLM-as-a-judge (the
    verifier's direct form), or the latest trained verifier (`self_rewarding.judge verifier`)."""
    config = ctx.config
    if config.self_rewarding.judge == "policy":
        return round_.previous.policy, replace(config.verifier, kind="judge")
    for index in range(round_.index - 1, -1, -1):
        earlier = Round.of(ctx.run_dir, index)
        if earlier.has_verifier:
            return earlier.verifier, config.verifier
    raise ValueError("--self_rewarding.judge verifier: no earlier round trained a verifier "
                     "(--verifier.train_in_rounds true trains one in round 0)")


def distinct_solutions(rows) -> dict[str, list[dict]]:
    """Per problem, its sampled solutions without repeats, in sampling order (steps and the oracle's grade)."""
    solutions: dict[str, list[dict]] = {}
    for row in rows:
        kept = solutions.setdefault(row["problem_id"], [])
        for solution in row["solutions"]:
            if all(solution["steps"] != other["steps"] for other in kept):
                kept.append(solution)
    return solutions


def judge_samples(ctx: Context, round_: Round) -> dict[str, float]:
    """Every distinct sampled solution scored by the judge (`judge_of`), on the search workers; judged.jsonl, one
    line per problem: its solutions with their scores and oracle grades, and the judge's tokens."""
    solutions = distinct_solutions(read_jsonl(round_.path / "samples.jsonl"))
    problems = [problem for problem in ctx.problems.for_round(round_.index, ctx.config.task.problems_per_round)
                if solutions.get(problem.id)]
    if ctx.config.self_rewarding.judge == "oracle":  # the diagnostic upper bound: the grades, no model, no tokens
        rows = [{"problem_id": problem.id, "scores": [float(s["correct"]) for s in solutions[problem.id]],
                 "tokens_generated": 0, "tokens_read": 0} for problem in problems]
        return judged_metrics(round_, solutions, rows)
    judge_path, judge = judge_of(ctx, round_)
    pool = ctx.search_pool(round_, round_.previous.policy, None, ctx.config.search.temperature, "judge")
    pool.settings = replace(pool.settings, verifier_path=str(judge_path), verifier=judge)
    steps = {problem.id: [solution["steps"] for solution in solutions[problem.id]] for problem in problems}
    shards = shard(problems, ctx.config.cluster.problems_per_task, len(pool.workers))
    rows = [row for batch in pool.map("judge", shards, steps, label=f"round {round_.index} judge")
            for row in batch]
    return judged_metrics(round_, solutions, rows)


def judged_metrics(round_: Round, solutions: dict[str, list[dict]], rows: list[dict]) -> dict[str, float]:
    """judged.jsonl from the judge's rows (per problem: its solutions' scores and the judge's tokens), and the
    judge's figures: solutions, tokens, and the AUROC of its scores against the oracle's grades."""
    judged = [{**row, "solutions": [{**solution, "score": score} for solution, score in
                                    zip(solutions[row["problem_id"]], row["scores"], strict=True)]}
              for row in rows]
    write_jsonl(round_.path / "judged.jsonl", [{key: value for key, value in row.items() if key != "scores"}
                                                for row in judged])
    scores = [solution["score"] for row in judged for solution in row["solutions"]]
    grades = [bool(solution["correct"]) for row in judged for solution in row["solutions"]]
    metrics = {"judge/solutions": float(len(scores)),
               "judge/tokens_generated": float(sum(row["tokens_generated"] for row in rows)),
               "judge/tokens_read": float(sum(row["tokens_read"] for row in rows))}
    area = auroc(scores, grades)
    if area is not None:
        metrics["judge/auroc"] = area
    return metrics


def preference_pairs(ctx: Context, round_: Round) -> dict[str, float]:
    """Per judged problem, its highest judged solution preferred to its lowest (the first sampled wins a tie),
    when their scores differ by at least `self_rewarding.margin`; preference_pairs.jsonl."""
    margin = ctx.config.self_rewarding.margin
    problems = {problem.id: problem for problem in ctx.problems.train}
    pairs, right, chosen_correct = [], 0, 0
    for row in read_jsonl(round_.path / "judged.jsonl"):
        solutions = row["solutions"]
        if len(solutions) < 2:
            continue
        best = max(solutions, key=lambda solution: solution["score"])
        worst = min(solutions, key=lambda solution: solution["score"])
        if best["score"] - worst["score"] < margin:
            continue
        prompt = ctx.task.format_prompt(problems[row["problem_id"]])
        pairs.append(PreferencePair(row["problem_id"], prompt, tuple(best["steps"]), tuple(worst["steps"])))
        chosen_correct += bool(best["correct"])
        right += bool(best["correct"]) and not worst["correct"]
    write_jsonl(round_.path / "preference_pairs.jsonl", pairs)
    metrics = {"pairs/count": float(len(pairs))}
    if pairs:  # the oracle's view of the judge's pairs: reported, never used
        metrics["pairs/chosen_correct_rate"] = chosen_correct / len(pairs)
        metrics["pairs/right_order_rate"] = right / len(pairs)
    return metrics


def train_policy_dpo(ctx: Context, round_: Round) -> dict[str, float]:
    """The previous round's policy trained with DPO (β `self_rewarding.beta`, the reference its own start; with
    `self_rewarding.sft_weight` an SFT term on the chosen solutions) on the round's preference pairs for
    `policy_train.max_steps` steps; with no pair, carried forward."""
    from trainers.verifier import VerifierData, VerifierObjective

    pairs = list(read_jsonl(round_.path / "preference_pairs.jsonl", PreferencePair))
    start = Path(round_.previous.policy)
    if not pairs:
        return {**keep_model(round_, "policy", start, "no preference pair (the judge scored every solution of a "
                                                       "problem alike)"), "policy/pairs": 0.0}
    settings = ctx.config.self_rewarding
    data = VerifierData(VerifierObjective(kind="dpo", beta=settings.beta, chosen_sft_weight=settings.sft_weight),
                        pairs=tuple(pairs))
    section = ctx.config.policy_train
    if settings.learning_rate > 0:
        section = replace(section, round_learning_rate=settings.learning_rate)
    metrics = train(ctx, round_, "policy", start, data, section, section.max_steps, trainer="verifier")
    return {**metrics, "policy/pairs": float(len(pairs))}
