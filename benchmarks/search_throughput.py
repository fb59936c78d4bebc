"""Search throughput, measured side by side in one process on the same models and problems:

1. batched many-tree MCTS* (one sampler call for the selected leaves of all trees, one PRM pass for all
   new children);
   (default: KV of tree nodes reused across simulations, rows leave the batch as they stop), and the same
   batching with transformers' `generate` and whole-prefix PRM passes;
2. the naive mode of the official code (one model call per candidate step and per PRM score);
3. one large batched call of transformers' `generate` (the practical ceiling of this machine);
4. the arithmetic ceiling: measured fp32 matmul rate over the model's FLOPs per generated token.

Every mode runs `--repeats` times, interleaved, and the figures are medians with their range: one sub-second
`generate` call swings by a quarter from run to run.

Usage: python benchmarks/search_throughput.py [--policy P --prm Q] [--problems 64] [--naive-problems 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_model_arguments, machine, matmul_gflops, model_paths, print_table  # noqa: E402


class Timed:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, function):
        self.function = function
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args):
        started = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def run_search(prompts, sampler, scorer, params, naive: bool) -> dict:
    """MCTS* over all prompts; naive: one model call per candidate step and per score, as the official code."""
    from search.baselines import unbatched_propose, unbatched_score
    from search.mcts import run_mcts

    propose, score = Timed(sampler.propose), Timed(scorer.score)
    started = time.perf_counter()
    if naive:
        trees = run_mcts(prompts, unbatched_propose(propose), unbatched_score(score), params)
    else:
        trees = run_mcts(prompts, propose, score, params)
    seconds = time.perf_counter() - started
    tokens = sum(tree.tokens_used for tree in trees)
    nodes = sum(len(tree.nodes) - 1 for tree in trees)
    return {"seconds": seconds, "tokens": tokens, "nodes": nodes, "tokens_per_s": tokens / seconds,
            "nodes_per_s": nodes / seconds, "sample_s": propose.seconds, "score_s": score.seconds,
            "tree_s": seconds - propose.seconds - score.seconds, "model_calls": propose.calls + score.calls}


def generate_ceiling(model, tokenizer, prompts: list[str], new_tokens: int) -> dict:
    """One `generate` over all prompts (left-padded), every row forced to `new_tokens` sampled tokens."""
    from lm.encoding import encode_prompt

    ids = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, sequence in enumerate(ids):
        input_ids[row, width - len(sequence):] = torch.tensor(sequence)
        mask[row, width - len(sequence):] = 1
    with torch.inference_mode():
        started = time.perf_counter()
        output = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=new_tokens,
                                min_new_tokens=new_tokens, do_sample=True, pad_token_id=tokenizer.pad_token_id)
        seconds = time.perf_counter() - started
    tokens = (output.shape[1] - width) * output.shape[0]
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def flops_per_token(model, context: int) -> float:
    """Forward FLOPs of one generated token with a KV cache: 2 per weight (embeddings excluded, LM head
    included) plus attention over `context` cached positions (2 matmuls of hidden size per layer)."""
    config = model.config
    weights = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    if getattr(config, "tie_word_embeddings", False):
        weights += model.get_input_embeddings().weight.numel()
    return 2.0 * weights + 4.0 * config.num_hidden_layers * context * config.hidden_size


def spread(values: list[float]) -> str:
    """Median and range of repeated figures: `median [min-max]`."""
    return f"{statistics.median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--problems", type=int, default=64, help="Trees searched at once (batched mode).")
    parser.add_argument("--naive-problems", type=int, default=8, help="Trees searched in the naive mode.")
    parser.add_argument("--simulations", type=int, default=8, help="MCTS* simulations per tree (full budget).")
    parser.add_argument("--kv-store-mb", type=float, default=256.0, help="KV kept across calls per model.")
    parser.add_argument("--generate-batch", type=int, default=64, help="Rows of the `generate` ceiling call.")
    parser.add_argument("--generate-tokens", type=int, default=64, help="New tokens per row of that call.")
    parser.add_argument("--repeats", type=int, default=5,
                        help="Runs of every mode, interleaved; figures are medians with their range.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from lm.build import load_policy, load_prm, load_tokenizer
    from lm.prm_scorer import PRMScorer
    from lm.sampler import StepSampler
    from rest_mcts.tasks import get_task
    from search.mcts import MCTSParams

    policy_path, prm_path = model_paths(args)
    task = get_task(args.task)
    tokenizer = load_tokenizer(policy_path)
    policy = load_policy(policy_path)
    prm = load_prm(prm_path)

    def cached_models(seed: int):
        """A sampler and scorer with empty node stores (the fast paths of a search worker)."""
        return (StepSampler(policy, tokenizer, task.step_delimiter, task.is_final_step, max_step_tokens=24,
                            temperature=1.0, seed=seed, kv_store_mb=args.kv_store_mb),
                PRMScorer(prm, load_tokenizer(prm_path), kv_store_mb=args.kv_store_mb))

    # Batching with `generate`, and the naive mode: generate per candidate step (the faster option at batch 1 here).
    generate_sampler = StepSampler(policy, tokenizer, task.step_delimiter, task.is_final_step, max_step_tokens=24,
                                   temperature=1.0, seed=0, decode="generate")
    whole_scorer = PRMScorer(prm, load_tokenizer(prm_path), shared_prefix=False)
    problems = task.problems("test", max(args.problems, args.naive_problems, args.generate_batch), seed=0)
    prompts = [(p.id, task.format_prompt(p)) for p in problems]
    params = MCTSParams(branch=3, max_simulations=args.simulations, stop_at_end_gate=False, max_depth=10)

    print(f"machine: {machine()}")
    print(f"policy {policy_path} ({sum(p.numel() for p in policy.parameters()) / 1e6:.2f} M parameters)")
    # Warm every path up; the cached one through a throwaway sampler and scorer.
    run_search(prompts[:4], generate_sampler, whole_scorer, params, naive=False)
    run_search(prompts[:4], *cached_models(seed=1), params, naive=False)
    runs: dict[str, list[dict]] = {"batched": [], "batched_hf": [], "naive": [], "ceiling": []}
    for _repeat in range(args.repeats):
        sampler, scorer = cached_models(seed=0)
        if not (scorer.shared_prefix and scorer.kv_store is not None and sampler.kv_store is not None):
            raise SystemExit("the cached path's fast paths are off (PRM sibling sharing or node KV store): "
                             "the figures would not measure them")
        runs["batched"].append(run_search(prompts[: args.problems], sampler, scorer, params, naive=False))
        runs["batched"][-1]["store_hits"] = sampler.kv_store.hits + scorer.kv_store.hits
        runs["batched_hf"].append(run_search(prompts[: args.problems], generate_sampler, whole_scorer, params,
                                             naive=False))
        runs["naive"].append(run_search(prompts[: args.naive_problems], generate_sampler, whole_scorer, params,
                                        naive=True))
        runs["ceiling"].append(generate_ceiling(policy, tokenizer, [p for _, p in prompts[: args.generate_batch]],
                                                args.generate_tokens))
    gflops = matmul_gflops()
    context = 40 + args.generate_tokens // 2
    arithmetic = gflops * 1e9 / flops_per_token(policy, context)

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[mode])

    header = ["mode", "trees", "seconds", "tokens", "tokens/s", "nodes/s", "sample s", "PRM s", "tree s", "calls"]
    rows = [[name, count, median(mode, "seconds"), median(mode, "tokens"),
             spread([r["tokens_per_s"] for r in runs[mode]]), median(mode, "nodes_per_s"), median(mode, "sample_s"),
             median(mode, "score_s"), median(mode, "tree_s"), runs[mode][0]["model_calls"]]
            for name, count, mode in (("batched MCTS*, KV reuse", args.problems, "batched"),
                                      ("batched MCTS*, generate", args.problems, "batched_hf"),
                                      ("naive MCTS*", args.naive_problems, "naive"))]
    rows.append([f"generate batch {args.generate_batch}", "-", median("ceiling", "seconds"),
                 median("ceiling", "tokens"), spread([r["tokens_per_s"] for r in runs["ceiling"]]), "-", "-", "-",
                 "-", 1])
    rows.append(["arithmetic ceiling", "-", "-", "-", arithmetic, "-", "-", "-", "-", "-"])
    print_table(f"search throughput ({args.simulations} simulations, branch 3, full budget; medians of "
                f"{args.repeats} interleaved runs, tokens/s as median [min-max])", header, rows)

    def ratio(numerator: str, denominator: str, key: str = "tokens_per_s") -> str:
        """The ratio of two modes within each repeat (paired), as median [min-max]."""
        return spread([a[key] / b[key] for a, b in zip(runs[numerator], runs[denominator])])

    print(f"\nmatmul {gflops:.1f} GFLOP/s; {flops_per_token(policy, context) / 1e6:.2f} MFLOP per generated token")
    print(f"node KV store hits per batched run (sampler + PRM): {runs['batched'][0]['store_hits']}")
    print(f"batched / naive tokens/s:    {ratio('batched', 'naive')}x")
    print(f"batched / naive nodes/s:     {ratio('batched', 'naive', 'nodes_per_s')}x")
    print(f"batched MCTS* / generate:    {ratio('batched', 'ceiling')}")
    print(f"KV reuse / batching with generate: {ratio('batched', 'batched_hf')}x")
    print(f"generate / arithmetic:       {spread([r['tokens_per_s'] / arithmetic for r in runs['ceiling']])}")


if __name__ == "__main__":
    main()
