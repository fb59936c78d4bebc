"""A round's evaluation: greedy decoding, MCTS* (its answer margin picked on the dev problems), pass@k and
self-consistency on the held-out splits, the step scorers against the true step labels, and MCTS* with the
verifier trained in the rounds."""

from __future__ import annotations

from dataclasses import replace

from lm.data import Problem, write_jsonl
from rest_mcts.config import RunConfig
from rest_mcts.methods import BudgetPlan, MethodCall
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context, logger
from rest_mcts.workers import greedy_results, search_to_file, shard


def evaluate_round(ctx: Context, round_: Round) -> dict[str, float]:
    """Greedy decoding and MCTS* (the `eval` section's) on the test and OOD splits with this round's models.

    With dev problems, MCTS* runs on them first and its answer margin is the one that answered them best
    (`pick_answer_margin`); the test and OOD answers then use that margin.
    """
    from rest_mcts.round_metrics import greedy_metrics, length_accuracy, mcts_metrics, pick_answer_margin

    config, metrics = ctx.config, {}
    pool = ctx.search_pool(round_, round_.policy, round_.prm, config.eval.temperature, "eval",
                           config.eval.greedy_first)
    per_task = config.cluster.problems_per_task
    params = config.eval.mcts_params(config.search)
    margin = config.eval.answer_margin
    if ctx.problems.dev:
        trees = search_to_file(pool, ctx.problems.dev, params, round_.path / "eval_dev_trees.jsonl", per_task,
                               f"round {round_.index} dev MCTS*")
        choice = pick_answer_margin(ctx.task, ctx.problems.dev, trees)
        margin = choice.margin
        metrics["dev/mcts/answer_margin"] = margin
        metrics["dev/mcts/accuracy"] = choice.accuracy[margin]
        metrics["dev/mcts/accuracy_prm_choice"] = choice.accuracy[min(choice.accuracy)]
        metrics["dev/mcts/accuracy_first_path"] = choice.accuracy[max(choice.accuracy)]
        logger.info("round %d: answer margin %g (dev accuracy, sign-test p against the first path: %s)",
                    round_.index, margin, ", ".join(
                        f"{m:g}: {a:.3f}" + (f" p={choice.p_value[m]:.2f}" if m in choice.p_value else "")
                        for m, a in choice.accuracy.items()))
    for split, problems in ctx.problems.held_out.items():
        greedy = greedy_results(pool, problems, config.search.max_depth, per_task,
                                f"round {round_.index} {split} greedy")
        write_jsonl(round_.path / f"eval_{split}_greedy.jsonl", greedy)
        metrics.update(greedy_metrics(greedy, split))
        right = {result.problem_id: result.correct for result in greedy}
        metrics.update(length_accuracy(ctx.task, problems, [right[p.id] for p in problems], f"{split}/greedy"))
        if split == "test" and config.eval.pass_at_k and (round_.index == 0 or config.eval.pass_at_k_every_round):
            metrics.update(pass_at_k_metrics(pool, problems, config, split, round_.index))
        trees = search_to_file(pool, problems, params, round_.path / f"eval_{split}_trees.jsonl", per_task,
                               f"round {round_.index} {split} MCTS*")
        metrics.update(mcts_metrics(ctx.task, problems, trees, split, margin))
    if round_.has_verifier:
        metrics.update(verifier_mcts_metrics(ctx, round_, pool, params, margin))
    return metrics


def verifier_mcts_metrics(ctx: Context, round_: Round, pool, params, margin: float) -> dict[str, float]:
    """The round evaluation's MCTS* again on each held-out split, with the same parameters and answer margin, and
    the round's verifier valuing the terminal nodes (`mcts_leaf_verifier`) and/or every node in place of the PRM
    (`mcts_step_verifier`), as `verifier.eval_as` says; trees in eval_<split>_trees_<method>.jsonl. On synthetic
    tasks the step verifier's AUROC and sibling ranking on its trees too (`step_verifier/...`)."""
    from rest_mcts.round_metrics import mcts_metrics

    config, metrics = ctx.config, {}
    uses = ("leaf", "step") if config.verifier.eval_as == "both" else (config.verifier.eval_as,)
    settings, pool.settings = pool.settings, replace(pool.settings, verifier_path=str(round_.verifier),
                                                     verifier=config.verifier)
    try:
        for use in uses:
            method = f"mcts_{use}_verifier"
            for split, problems in ctx.problems.held_out.items():
                trees = search_to_file(pool, problems, params, round_.path / f"eval_{split}_trees_{method}.jsonl",
                                       config.cluster.problems_per_task,
                                       f"round {round_.index} {split} MCTS* ({use} verifier)", use)
                metrics.update(mcts_metrics(ctx.task, problems, trees, split, margin, method,
                                            "step_verifier" if use == "step" else None))
    finally:
        pool.settings = settings
    return metrics


def pass_at_k_metrics(pool, problems: list[Problem], config: RunConfig, split: str, round_index: int
                      ) -> dict[str, float]:
    """pass@k and self-consistency over k sampled solutions per problem (`eval.pass_at_k`)."""
    k = config.eval.pass_at_k
    call = MethodCall("sampling", split, pool.settings.seed, BudgetPlan(0, k, k, k), config.search.mcts_params(),
                      max_depth=config.search.max_depth)
    shards = shard(problems, config.cluster.problems_per_task, len(pool.workers))
    settings, pool.settings = pool.settings, replace(pool.settings, greedy_first=False)  # all k sampled
    try:
        label = f"round {round_index} {split} pass@{k}"
        records = [record for batch in pool.map("run_call", shards, call, label=label) for record in batch]
    finally:
        pool.settings = settings
    metrics = {}
    for method, name in (("pass_at_n", f"pass_at_{k}"), ("self_consistency", f"self_consistency_{k}")):
        chosen = [record for record in records if record.method == method]
        metrics[f"{split}/{name}/accuracy"] = sum(record.correct for record in chosen) / len(chosen)
    metrics[f"{split}/pass_at_{k}/tokens_per_problem"] = sum(
        record.tokens for record in records if record.method == "pass_at_n") / len(problems)
    return metrics
