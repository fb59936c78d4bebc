"""MCTS* throughput with each search backend (`search.backend hf` and `vllm`), side by side in one process on the
same models, problems, settings and seeds.

For each model, the search models are built once per row (`VARIANTS`: hf; vllm with a float32 engine, the backend's
default on CPU; vllm with the dtype left to vLLM, `--engine.dtype auto`, bfloat16 on CPU) through
`rest_mcts.search_models.build_search_models` (what a search worker runs; the vllm backend's PRM is the project's
scorer, `engine.prm hf`), and the seconds that takes are their own column: loading the checkpoints for hf, that and
starting the vLLM engine for vllm. Then every repeat searches the same problems with each row, in alternating order,
through `rest_mcts.methods.search_trees` (no Ray, so the figures are the engine's): generated tokens and new nodes of
the trees over the wall seconds of the search. Before each search the sampler is reseeded (the same seed for every
row) and every cache starts empty (the hf sampler's and PRM scorer's node KV stores, vLLM's prefix cache), so no
search reuses an earlier one's work.

Models: `tiny` (`lm.build.build_tiny_policy`'s defaults, head size 32), `wide` (hidden 512, 8 layers, 8 heads of 64,
about 34 M parameters), both randomly initialised and built here with `prm_from_policy` PRMs, and `gemma` (Gemma 3
270M converted by `rest_mcts.pretrained`, head size 256, needs the `pretrained` extra). Prompt settings: the task's
own short prompts, and the same prompts after one few-shot block of the task's worked solutions shared by all
(`--shared-prefix-chars`), the case vLLM's prefix caching is for. Random models generate junk steps: the table gives
the mean step length and the share of steps that are a bare delimiter, so that a fast row is not one of empty steps.

Usage: python benchmarks/vllm_backend.py [--models tiny,wide,gemma] [--repeats 3] [--out results.json]
       python benchmarks/vllm_backend.py --from-json results.json     # the table again, from saved results
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, print_table  # noqa: E402

VARIANTS = {"hf": ("hf", ""), "vllm fp32": ("vllm", ""), "vllm auto": ("vllm", "auto")}
"""Row label: (search.backend, engine.dtype). The default ("") is float32 on CPU; `auto` leaves it to vLLM, which
downcasts a float32 checkpoint to bfloat16 on every x86 CPU, native bfloat16 arithmetic or not."""
PROMPT_SETTINGS = ("short", "shared")


def build_checkpoints(model: str, folder: Path) -> tuple[str, str]:
    """The policy and PRM checkpoints of `model` (tiny, wide or gemma), saved under `folder` where built here."""
    from lm.build import build_tiny_policy, load_tokenizer, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    policy, prm = folder / model / "policy", folder / model / "prm"
    if model == "gemma":
        from rest_mcts.pretrained import gemma3_270m

        policy = gemma3_270m()
        tokenizer = load_tokenizer(policy)
    else:
        tokenizer = build_char_tokenizer()
        # 1024 positions (not the default 512) leave room for the shared few-shot block and ten steps; rotary
        # positions cost nothing per token, so the model computes as the default one does.
        sizes = dict(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048) if model == "wide" else {}
        save_checkpoint(build_tiny_policy(tokenizer, max_positions=1024, seed=0, **sizes), tokenizer, policy)
    save_checkpoint(prm_from_policy(policy, seed=1), tokenizer, prm)
    return str(policy), str(prm)


def few_shot_block(task, chars: int) -> str:
    """The task's worked seed solutions, one after another with a blank line between them, until at least `chars`
    characters: one prefix shared by every prompt."""
    examples = iter(task.seed_examples(max(8, chars // 10), seed=0))
    block = ""
    while len(block) < chars:
        example = next(examples)
        block += example.prompt + "".join(example.steps) + "\n"
    return block


def settings_for(backend: str, policy: str, prm: str, args: argparse.Namespace, dtype: str = ""):
    from rest_mcts.config import EngineConfig
    from rest_mcts.search_models import SamplerSettings

    engine = EngineConfig(block_size=args.block_size, kv_cache_gb=args.kv_cache_gb, prm="hf", dtype=dtype) \
        if backend == "vllm" else None
    return SamplerSettings(policy, prm, args.task, args.temperature, args.max_step_tokens, seed=0,
                           backend=backend, engine=engine)


def empty_caches(sampler, scorer) -> None:
    """Start a search with no cached work: new node KV stores (hf), an empty prefix cache (vLLM)."""
    from lm.kv_cache import PrefixStore

    for model in (sampler, scorer):
        if getattr(model, "kv_store", None) is not None:
            model.kv_store = PrefixStore(model.kv_store.max_bytes)
    if hasattr(sampler, "llm") and not sampler.llm.reset_prefix_cache():
        raise SystemExit("vLLM did not reset its prefix cache: later searches would reuse earlier ones")


def run_search(prompts, sampler, scorer, params, seed: int) -> dict:
    """MCTS* over all prompts at once from `seed`; its figures (seconds are the search's wall time)."""
    from rest_mcts.methods import search_trees
    from search.mcts import Scorers

    empty_caches(sampler, scorer)
    sampler.reseed(seed)
    sample_seconds = score_seconds = 0.0

    def propose(prefixes, num_samples):
        nonlocal sample_seconds
        started = time.perf_counter()
        try:
            return sampler.propose(prefixes, num_samples)
        finally:
            sample_seconds += time.perf_counter() - started

    def score(prefixes):
        nonlocal score_seconds
        started = time.perf_counter()
        try:
            return scorer.score(prefixes)
        finally:
            score_seconds += time.perf_counter() - started

    started = time.perf_counter()
    trees = search_trees(prompts, propose, sampler.greedy, Scorers(score), params)
    seconds = time.perf_counter() - started
    steps = [node for tree in trees for node in tree.nodes[1:]]
    tokens = sum(tree.tokens_used for tree in trees)
    return {"seed": seed, "seconds": seconds, "tokens": tokens, "nodes": len(steps), "tokens_per_s": tokens / seconds,
            "nodes_per_s": len(steps) / seconds,
            "mean_step_tokens": sum(node.num_tokens for node in steps) / max(1, len(steps)),
            "bare_steps": sum(not node.step_text.strip() for node in steps) / max(1, len(steps)),
            "max_depth": max(node.depth for node in steps) if steps else 0,
            "sample_s": sample_seconds, "score_s": score_seconds,
            "kv_store_hits": {name: model.kv_store.hits for name, model in (("sampler", sampler), ("prm", scorer))
                              if getattr(model, "kv_store", None) is not None}}


def engine_facts(sampler) -> dict:
    """What a vLLM engine actually runs: its dtype, and the cores and torch threads of this process."""
    import torch

    config = getattr(getattr(sampler.llm, "llm_engine", None), "model_config", None)
    return {"dtype": str(getattr(config, "dtype", "?")), "affinity": sorted(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads()}


def benchmark_model(model: str, variants: list[str], args: argparse.Namespace, folder: Path) -> dict:
    """Build `model`'s search models for each variant, then search with all of them, `args.repeats` times each."""
    import torch

    from rest_mcts.search_models import build_search_models
    from search.mcts import MCTSParams

    policy, prm = build_checkpoints(model, folder)
    problems = getattr(args, f"{model}_problems")
    result = {"model": model, "policy": policy, "problems": problems, "variants": variants, "parameters_m": None,
              "startup_s": {}, "engine": {}}
    built = {}
    for variant in variants:
        backend, dtype = VARIANTS[variant]
        started = time.perf_counter()
        task, sampler, scorer = build_search_models(settings_for(backend, policy, prm, args, dtype), "cpu", 0,
                                                    args.threads)
        result["startup_s"][variant] = time.perf_counter() - started
        torch.set_num_threads(args.threads)  # hf rows alike (once an engine binds its cores, vLLM skips this call)
        built[variant] = (sampler, scorer)
        if backend == "vllm":
            result["engine"][variant] = engine_facts(sampler)
        else:
            result["parameters_m"] = sum(p.numel() for p in sampler.model.parameters()) / 1e6
        print(f"{model}: {variant} search models built in {result['startup_s'][variant]:.1f} s", flush=True)
    problem_list = task.problems("test", problems, seed=0)
    block = few_shot_block(task, args.shared_prefix_chars)
    prompts = {"short": [(p.id, task.format_prompt(p)) for p in problem_list],
               "shared": [(p.id, block + task.format_prompt(p)) for p in problem_list]}
    tokenizer = built[variants[0]][0].tokenizer
    result["shared_prefix_tokens"] = len(tokenizer(block, add_special_tokens=False)["input_ids"])
    result["short_prompt_tokens"] = statistics.mean(len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                                                    for _, prompt in prompts["short"])
    params = MCTSParams(branch=3, max_simulations=getattr(args, f"{model}_simulations"), stop_at_end_gate=False,
                        max_depth=args.max_depth)
    result["simulations"] = params.max_simulations
    warm_up = replace(params, max_simulations=1)
    for setting in PROMPT_SETTINGS:  # not timed: first calls allocate and load kernels
        for variant in variants:
            run_search(prompts[setting][:1], *built[variant], warm_up, seed=99)
    result["runs"] = {f"{setting}/{variant}": [] for setting in PROMPT_SETTINGS for variant in variants}
    for repeat in range(args.repeats):
        for setting in PROMPT_SETTINGS:
            for variant in variants if repeat % 2 == 0 else variants[::-1]:
                run = run_search(prompts[setting], *built[variant], params, seed=repeat)
                result["runs"][f"{setting}/{variant}"].append(run)
                print(f"  repeat {repeat} {setting:6s} {variant:9s} {run['seconds']:6.1f} s "
                      f"{run['tokens_per_s']:8.0f} tokens/s {run['nodes']} nodes", flush=True)
    del built, sampler, scorer
    gc.collect()
    return result


def spread(values: list[float]) -> str:
    """Median and range of repeated figures: `median [min-max]`."""
    return f"{statistics.median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def report(results: dict) -> None:
    """The table and the ratios to hf (paired within each repeat) of saved or fresh results."""
    print(f"machine: {results['machine']}; vLLM {results['vllm_version']}")
    print(f"load average before {results['load_before']}, after {results['load_after']}; "
          f"{results['seconds']:.0f} s in all")
    header = ["model", "prompts", "backend", "trees", "sims", "seconds", "tokens", "tokens/s", "nodes/s",
              "step tokens", "bare %", "sample s", "PRM s", "start-up s"]
    rows, ratios = [], []
    for model in results["models"]:
        for setting in PROMPT_SETTINGS:
            prompts = f"short {model['short_prompt_tokens']:.0f}" if setting == "short" else \
                f"shared {model['shared_prefix_tokens']}+"
            for variant in model["variants"]:
                runs = model["runs"][f"{setting}/{variant}"]

                def median(key: str, runs=runs) -> float:
                    return statistics.median(run[key] for run in runs)

                rows.append([f"{model['model']} ({model['parameters_m']:.1f} M)", prompts, variant,
                             model["problems"], model["simulations"], median("seconds"), round(median("tokens")),
                             spread([r["tokens_per_s"] for r in runs]), median("nodes_per_s"),
                             median("mean_step_tokens"), 100 * median("bare_steps"), median("sample_s"),
                             median("score_s"), model["startup_s"][variant]])
                if variant != "hf":
                    hf = model["runs"][f"{setting}/hf"]
                    ratios.append((model["model"], setting, variant,
                                   [v["tokens_per_s"] / h["tokens_per_s"] for h, v in zip(hf, runs)],
                                   [v["nodes_per_s"] / h["nodes_per_s"] for h, v in zip(hf, runs)]))
    print_table(f"MCTS* with each backend (branch 3, full budget, up to {results['max_step_tokens']} tokens a step; "
                f"medians of {results['repeats']} interleaved runs, tokens/s as median [min-max]; prompts: their "
                "tokens; start-up: building the search models once, not in the seconds)", header, rows)
    print("\nbackend / hf, paired within each repeat:")
    for model, setting, variant, tokens, nodes in ratios:
        print(f"  {model:6s} {setting:6s} {variant:9s} tokens/s {spread(tokens)}x   nodes/s {spread(nodes)}x")
    for model in results["models"]:
        for variant, facts in model["engine"].items():
            print(f"  {model['model']} {variant}: engine dtype {facts['dtype']}, process cores {facts['affinity']}, "
                  f"torch threads {facts['torch_threads']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,wide,gemma", help="Comma-separated: tiny, wide, gemma.")
    parser.add_argument("--tiny-problems", type=int, default=16, help="Trees searched at once with the tiny model.")
    parser.add_argument("--tiny-simulations", type=int, default=8, help="MCTS* simulations per tree (tiny model).")
    parser.add_argument("--wide-problems", type=int, default=6)
    parser.add_argument("--wide-simulations", type=int, default=4)
    parser.add_argument("--gemma-problems", type=int, default=2)
    parser.add_argument("--gemma-simulations", type=int, default=2)
    parser.add_argument("--task", default="modtarget", help="Synthetic task whose test problems are searched.")
    parser.add_argument("--shared-prefix-chars", type=int, default=480,
                        help="Length of the few-shot block before every prompt in the shared-prefix setting.")
    parser.add_argument("--max-step-tokens", type=int, default=32)
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads and vLLM engine cores (default 1: one search worker's CPU share).")
    parser.add_argument("--block-size", type=int, default=32, help="vLLM KV block size (engine.block_size).")
    parser.add_argument("--kv-cache-gb", type=float, default=1.0, help="vLLM KV cache per engine (engine.kv_cache_gb).")
    parser.add_argument("--auto-models", default="tiny",
                        help="Models also searched with the engine's dtype left to vLLM (`--engine.dtype auto`: "
                             "bfloat16 on x86, far slower than float32 without native bfloat16).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="", help="Write the raw results here as JSON.")
    parser.add_argument("--from-json", default="", help="Print the table of saved results and exit.")
    args = parser.parse_args(argv)
    if args.from_json:
        report(json.loads(Path(args.from_json).read_text()))
        return
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # the table, not vLLM's start-up log
    import torch
    import vllm

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = {"machine": machine(), "vllm_version": vllm.__version__, "repeats": args.repeats,
               "max_step_tokens": args.max_step_tokens, "arguments": vars(args), "models": []}
    with tempfile.TemporaryDirectory(prefix="rest-mcts-vllm-bench-") as folder:
        for model in args.models.split(","):
            variants = [variant for variant in VARIANTS
                        if variant != "vllm auto" or model in args.auto_models.split(",")]
            results["models"].append(benchmark_model(model, variants, args, Path(folder)))
            results.update(load_before=[round(x, 2) for x in load_before],
                           load_after=[round(x, 2) for x in os.getloadavg()], seconds=time.perf_counter() - started)
            if args.out:  # after each model, so that a run cut short keeps what it measured
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
