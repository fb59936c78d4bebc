"""The warm start's loss curve of the embedded policy on the default task's 8000 seed solutions, in one process
(AdamW, the trainers' warm-up and linear decay, gradient clipping at 1.0), printing the mean loss of every 100
steps and the seconds so far.

    python experiments/probe_warm_start.py SEED LR STEPS BATCH THREADS [LAYERS [HIDDEN]]

The runs in experiments/results/probe-warm-start-layers/ are `SEED 2e-3 1000 32 1 {2,4}` (two at a time on the
2-core machine, one thread each); docs/tasks.md reads them."""

import json
import random
import sys
import time

import torch

from rest_mcts.tasks import get_task
from rest_mcts.models.build import build_tiny_policy
from rest_mcts.models.tokenizer import build_char_tokenizer
from trainers.policy_sft import policy_sequences, causal_lm_loss
from trainers.batches import collate
from trainers.engine import learning_rate_factor

seed = int(sys.argv[1]); lr = float(sys.argv[2]); steps = int(sys.argv[3]); bs = int(sys.argv[4])
threads = int(sys.argv[5]); layers = int(sys.argv[6]) if len(sys.argv) > 6 else 4
hidden = int(sys.argv[7]) if len(sys.argv) > 7 else 128
torch.set_num_threads(threads)
tok = build_char_tokenizer()
task = get_task("modtarget", tok)
ex = task.seed_examples(8000, 0)
seqs = policy_sequences(tok, ex)
model = build_tiny_policy(tok, hidden_size=hidden, num_layers=layers, num_heads=4, intermediate_size=4*hidden, max_positions=256, seed=seed).train()
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: learning_rate_factor(s, 60, steps))
rng = random.Random(seed)
order = []
t0 = time.time(); losses = []
for step in range(steps):
    if len(order) < bs:
        idx = list(range(len(seqs))); rng.shuffle(idx); order += idx
    batch = [seqs[i] for i in order[:bs]]; order = order[bs:]
    b = collate(batch, tok.pad_token_id, torch.long, "cpu")
    loss = causal_lm_loss(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"])
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step()
    losses.append(loss.item())
    if (step + 1) % 100 == 0:
        print(json.dumps({"step": step + 1, "loss": round(sum(losses[-100:]) / 100, 3), "s": round(time.time() - t0, 1)}), flush=True)
