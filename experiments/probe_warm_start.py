"""The warm start's loss curve of the embedded policy on the default task's 8000 seed solutions, in one process
(AdamW, the trainers' warm-up and linear decay and gradient clipping, with the default run's settings), printing
the mean loss of every 100 steps and the seconds so far.

    python experiments/probe_warm_start.py SEED LR STEPS BATCH THREADS [LAYERS [HIDDEN]]

The runs in experiments/results/probe-warm-start-layers/ are `SEED 2e-3 1000 32 1 {2,4}` (two at a time on the
2-core machine, one thread each); docs/tasks.md reads them.
"""

from __future__ import annotations

import json
import random
import sys
import time

import torch

from lm.build import build_tiny_policy
from lm.tokenizer import build_char_tokenizer
from rest_mcts.config import RunConfig
from rest_mcts.tasks import get_task
from trainers.batches import collate
from trainers.engine import learning_rate_factor
from trainers.policy_sft import causal_lm_loss, policy_sequences

POLICY_TRAIN = RunConfig().policy_train  # the default run's warm-up and gradient clipping


def main(seed: int, learning_rate: float, steps: int, batch_size: int, threads: int, layers: int = 4,
         hidden: int = 128) -> None:
    torch.set_num_threads(threads)
    tokenizer = build_char_tokenizer()
    sequences = policy_sequences(tokenizer, get_task("modtarget", tokenizer).seed_examples(8000, 0))
    model = build_tiny_policy(tokenizer, hidden_size=hidden, num_layers=layers, num_heads=4,
                              intermediate_size=4 * hidden, max_positions=256, seed=seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, POLICY_TRAIN.warmup_steps, steps))
    rng = random.Random(seed)
    order: list[int] = []
    losses: list[float] = []
    started = time.time()
    for step in range(steps):
        if len(order) < batch_size:
            epoch = list(range(len(sequences)))
            rng.shuffle(epoch)
            order += epoch
        batch = collate([sequences[i] for i in order[:batch_size]], tokenizer.pad_token_id, torch.long, "cpu")
        order = order[batch_size:]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = causal_lm_loss(logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), POLICY_TRAIN.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            mean = round(sum(losses[-100:]) / 100, 3)
            print(json.dumps({"step": step + 1, "loss": mean, "s": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not 5 <= len(args) <= 7:
        sys.exit(__doc__)
    main(int(args[0]), float(args[1]), int(args[2]), int(args[3]), int(args[4]), *(int(a) for a in args[5:]))
