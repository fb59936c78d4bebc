"""Training throughput: the DeepSpeed policy trainer (trainers/) against a plain PyTorch loop on the same
model, the same sequences, the same micro-batches and optimizer settings, measured side by side in one run
(one process, world size 1; labelled tokens per second over the training loop, saving excluded).

Usage: python benchmarks/train_throughput.py [--policy P] [--steps 60] [--micro-batch 32] [--zero-stage 2]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_model_arguments, machine, model_paths, print_table  # noqa: E402


def plain_loop(policy_path: str, sequences, spec) -> dict:
    """The same training as trainers.engine.run_training, in plain PyTorch: AdamW, warm-up/decay, clipping."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.batches import collate, micro_batches
    from trainers.engine import learning_rate_factor
    from trainers.policy_sft import causal_lm_loss, count_predicted_tokens

    torch.manual_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(policy_path)
    model = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=spec.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, spec.warmup_steps, spec.max_steps))
    batches = micro_batches(len(sequences), spec, 0, 1, [len(s.input_ids) for s in sequences])
    model.train()
    tokens, losses = 0, []
    started = time.perf_counter()
    for _ in range(spec.max_steps):
        batch = collate([sequences[i] for i in next(batches)], tokenizer.pad_token_id, torch.long, "cpu")
        loss = causal_lm_loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                              batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(count_predicted_tokens(batch["labels"]))
        losses.append(loss.item())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "last_loss": losses[-1]}


def deepspeed_trainer(policy_path: str, examples, spec) -> dict:
    from trainers.engine import init_distributed
    from trainers.policy_sft import train_policy

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    init_distributed(0, 1, "127.0.0.1", port)
    with tempfile.TemporaryDirectory() as out:
        result = train_policy(policy_path, examples, spec, str(Path(out) / "policy"), rank=0, world_size=1)
    return {"seconds": result.seconds, "tokens": result.tokens, "tokens_per_s": result.tokens_per_s,
            "last_loss": result.last_loss}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--steps", type=int, default=60, help="Optimizer steps of each run.")
    parser.add_argument("--micro-batch", type=int, default=32, help="Sequences per step.")
    parser.add_argument("--zero-stage", type=int, default=2, help="DeepSpeed ZeRO stage.")
    parser.add_argument("--examples", type=int, default=1000, help="Seed solutions of the default task to train on.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from lm.build import load_tokenizer
    from rest_mcts.tasks import get_task
    from trainers.engine import TrainSpec
    from trainers.policy_sft import policy_sequences

    policy_path, _ = model_paths(args)
    examples = get_task(args.task).seed_examples(args.examples, seed=0)
    sequences = policy_sequences(load_tokenizer(policy_path), examples)
    spec = TrainSpec(zero_stage=args.zero_stage, micro_batch_size=args.micro_batch, learning_rate=1e-3,
                     warmup_steps=10, max_steps=args.steps, seed=0, group_by_length=True)
    plain_loop(policy_path, sequences, TrainSpec(**{**spec.__dict__, "max_steps": 5}))  # warm-up
    plain = plain_loop(policy_path, sequences, spec)
    speed = deepspeed_trainer(policy_path, examples, spec)
    print(f"machine: {machine()}")
    header = ["trainer", "steps", "seconds", "labelled tokens", "tokens/s", "last loss"]
    rows = [[name, args.steps, r["seconds"], r["tokens"], r["tokens_per_s"], r["last_loss"]]
            for name, r in ((f"DeepSpeed ZeRO-{args.zero_stage}", speed), ("plain PyTorch", plain))]
    print_table(f"policy SFT, micro-batch {args.micro_batch}, world size 1", header, rows)
    print(f"\nDeepSpeed / plain tokens/s: {speed['tokens_per_s'] / plain['tokens_per_s']:.2f}")


if __name__ == "__main__":
    main()
