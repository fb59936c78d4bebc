"""Can the project's PRM learn the default task's lookahead from true step labels, and at what CPU cost?

On modtarget the execution check (`check_step`) settles whether a step is written right; what is left to the PRM
is the lookahead: among siblings written right, which keep the target reachable. Inside the loop, trained on
inferred values, the PRM ranks such siblings near chance (`test/prm/sibling_accuracy` 0.43-0.60). This probe
takes the question of labels and data out: it trains the embedded PRM (`lm.build.build_tiny_prm`, fresh
weights) on the true labels of every correctly written step and measures how well it ranks held-out siblings.

Data. For each problem, every prefix of correctly written steps that still reaches the target (the bare prompt
included) and its three children, one per operation, written right (`ModTargetTask.steps_for`, each passing
`check_step`), labelled by the task's own `step_labels` (1: the target is still reachable after the step; the
last step: its value is the target). Training problems are the first ones of the train pool
(`task.problems("train", ..., data seed)`) until a set holds the asked number of labelled steps (smaller sets are
prefixes of larger ones); held-out problems are the test split, which the train pool never holds.

Training, as `trainers/prm.py` trains: labelled prefixes merged into their longest paths (`prm_sequences`), BCE at
each step's last token (`prm_loss`), AdamW with the default PRM's learning rate, warm-up, linear decay and
clipping, batches of the default micro-batch size (sequences), one thread.

Scoring, as the search scores: `lm.prm_scorer.PRMScorer.score` of each held-out prefix (the sigmoid at its last
step's last token, siblings sharing their parent's encoding). Measured every `--eval-every` steps: sibling accuracy
(over every pair of a right and a wrong child of one node, the share where the right one scores higher; ties
count half), the same by the digits left after the step (0: the last step, whose choice reads a written
difference), and AUROC over every held-out step. Train seconds are wall and process CPU seconds of the optimizer
steps only (evaluation excluded).

    nice python experiments/probe_prm_lookahead.py [--seed 0] [--out DIR] [--arm NAME:LAYERS:HIDDEN:EXAMPLES:STEPS ...]

The defaults reproduce experiments/results/probe-prm-lookahead/ (2 CPU cores, another job beside it), up to the
run-to-run noise of CPU training, which is not bitwise repeatable across processes here (the same 30 steps twice:
losses apart in the third decimal); an earlier run of the first arm is kept beside it
(`exploratory-default-60000-1000.log`: 0.754 where the recorded run has 0.662, the lookahead at chance in both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections import defaultdict
from pathlib import Path

import torch

from lm.build import build_tiny_prm
from lm.data import ValueExample, atomic_write_text
from lm.prm_scorer import PRMScorer
from lm.tokenizer import build_char_tokenizer
from rest_mcts.config import RunConfig
from rest_mcts.round_metrics import auroc
from rest_mcts.tasks import get_task
from rest_mcts.tasks.modtarget import OPERATIONS
from search.types import Prefix
from trainers.batches import collate
from trainers.engine import learning_rate_factor
from trainers.prm import prm_loss, prm_sequences

DEFAULTS = RunConfig()
PRM_TRAIN = DEFAULTS.prm_train  # the default PRM's learning rate, warm-up, clipping and micro-batch size
MODEL = DEFAULTS.model  # the embedded models' default size

DEFAULT_ARMS = (
    "default:2:128:60000:1000",
    "default:2:128:5000:1000",
    "layers4:4:128:60000:1000",
    "default:2:128:60000:3000",
)
"""NAME:LAYERS:HIDDEN:EXAMPLES:STEPS of the measured run (heads and MLP ratio as the default: 4 heads, MLP 4x)."""


def sibling_groups(task, problem) -> list[list[tuple[tuple[str, ...], bool]]]:
    """Per still-solvable prefix of correctly written steps (the bare prompt first), its three correctly written
    children (+, -, * chosen) with their true labels (`task.step_labels`): 1 when the target is still reachable."""
    prompt, count = task.format_prompt(problem), task.difficulty(problem)
    groups, frontier = [], [""]
    while frontier:
        solvable = []
        for operations in frontier:
            if len(operations) == count:
                continue
            group = []
            for operation in OPERATIONS:
                steps = tuple(task.steps_for(problem.question, operations + operation))
                if not task.check_step(prompt, steps):
                    raise AssertionError(f"{problem.question}: step {steps[-1]!r} fails the execution check")
                label = task.step_labels(problem, steps)[-1]
                group.append((steps, label))
                if label:
                    solvable.append(operations + operation)
            groups.append(group)
        frontier = solvable
    return groups


def labelled_steps(task, problems) -> list[dict]:
    """Every child of every solvable prefix of `problems`: problem, prompt, steps, label, group, digits left."""
    rows = []
    for problem in problems:
        prompt, count = task.format_prompt(problem), task.difficulty(problem)
        for index, group in enumerate(sibling_groups(task, problem)):
            for steps, label in group:
                rows.append({"problem_id": problem.id, "prompt": prompt, "steps": steps, "label": label,
                             "group": (problem.id, index), "digits_left": count - len(steps)})
    return rows


def training_sets(task, sizes: list[int], data_seed: int) -> dict[int, tuple[list[dict], int]]:
    """Per size: the labelled steps of the first train-pool problems whose steps reach it, and how many problems."""
    pool, rows, sets = [], [], {}
    wanted = sorted(set(sizes))
    count = 64
    while len(sets) < len(wanted):
        count *= 2
        pool = task.problems("train", count, data_seed)
        rows, sets, used = [], {}, 0
        for problem in pool:
            rows += labelled_steps(task, [problem])
            used += 1
            for size in wanted:
                if size not in sets and len(rows) >= size:
                    sets[size] = (list(rows), used)
            if len(sets) == len(wanted):
                break
    return sets


def ranking(rows: list[dict], scores: list[float]) -> dict:
    """Sibling accuracy (a tie counts half) overall and by digits left, their pair counts, and AUROC."""
    by_group: dict[tuple, list[tuple[float, bool, int]]] = defaultdict(list)
    for row, score in zip(rows, scores, strict=True):
        by_group[row["group"]].append((score, row["label"], row["digits_left"]))
    ranked, pairs = defaultdict(float), defaultdict(int)
    for members in by_group.values():
        for right, _, left in (m for m in members if m[1]):
            for wrong in (m[0] for m in members if not m[1]):
                keys = ["all", f"left{left}", "lookahead" if left else "last"] + (["left2plus"] if left >= 2 else [])
                for key in keys:
                    pairs[key] += 1
                    ranked[key] += 1.0 if right > wrong else 0.5 if right == wrong else 0.0
    ahead = [(score, row["label"]) for row, score in zip(rows, scores) if row["digits_left"]]
    result = {"auroc": auroc(scores, [row["label"] for row in rows]),
              "auroc_lookahead": auroc([score for score, _ in ahead], [label for _, label in ahead]),
              "sibling_accuracy": ranked["all"] / pairs["all"] if pairs["all"] else None,
              "pairs": pairs["all"]}
    for key in sorted(k for k in pairs if k != "all"):
        result[f"sibling_accuracy_{key}"] = ranked[key] / pairs[key]
        result[f"pairs_{key}"] = pairs[key]
    return result


def evaluate(model, tokenizer, rows: list[dict]) -> dict:
    scorer = PRMScorer(model, tokenizer, batch_size=128)
    scores = scorer.score([Prefix(row["prompt"], row["steps"]) for row in rows])
    model.train()
    return ranking(rows, scores)


def train_arm(name: str, layers: int, hidden: int, train_rows: list[dict], problems: int, steps: int,
              held_out: list[dict], args, tokenizer) -> dict:
    """Train one PRM on `train_rows` for `steps` optimizer steps, evaluating every `args.eval_every` steps."""
    examples = [ValueExample(row["problem_id"], row["prompt"], row["steps"], float(row["label"]), row["label"])
                for row in train_rows]
    sequences = prm_sequences(tokenizer, examples)
    model = build_tiny_prm(tokenizer, hidden_size=hidden, num_layers=layers, num_heads=MODEL.num_heads,
                           intermediate_size=4 * hidden, max_positions=MODEL.max_positions, seed=args.seed).train()
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=PRM_TRAIN.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, PRM_TRAIN.warmup_steps, steps))
    rng = random.Random(args.seed)
    order: list[int] = []
    losses: list[float] = []
    curve = [{"step": 0, "train_s": 0.0, "train_cpu_s": 0.0, "loss": None, **evaluate(model, tokenizer, held_out)}]
    print(f"  {name} L{layers} h{hidden} {len(train_rows)} steps labelled ({problems} problems, "
          f"{len(sequences)} sequences), {parameters} parameters; step 0: {_brief(curve[-1])}", flush=True)
    wall = cpu = 0.0
    for step in range(steps):
        started, started_cpu = time.perf_counter(), time.process_time()
        if len(order) < args.batch_size:
            epoch = list(range(len(sequences)))
            rng.shuffle(epoch)
            order += epoch
        batch = collate([sequences[i] for i in order[:args.batch_size]], tokenizer.pad_token_id, torch.float32,
                        "cpu")
        order = order[args.batch_size:]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = prm_loss(logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), PRM_TRAIN.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        if (step + 1) % args.eval_every == 0 or step + 1 == steps:
            window = losses[-args.eval_every:]
            point = {"step": step + 1, "train_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
                     "loss": round(sum(window) / len(window), 4), **evaluate(model, tokenizer, held_out)}
            curve.append(point)
            print(f"  {name} step {step + 1}: loss {point['loss']:.4f}, {_brief(point)}, "
                  f"{wall:.0f} s ({cpu:.0f} s CPU)", flush=True)
    return {"arm": name, "layers": layers, "hidden_size": hidden, "intermediate_size": 4 * hidden,
            "num_heads": MODEL.num_heads, "parameters": parameters, "train_examples": len(train_rows),
            "train_problems": problems, "train_sequences": len(sequences),
            "train_positive_share": round(sum(row["label"] for row in train_rows) / len(train_rows), 4),
            "steps": steps, "train_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
            "s_per_step": round(wall / steps, 4), **{k: v for k, v in curve[-1].items() if k not in (
                "step", "train_s", "train_cpu_s")}, "curve": curve}


def _brief(point: dict) -> str:
    return (f"sibling accuracy {point['sibling_accuracy']:.3f} (last step {point['sibling_accuracy_last']:.3f}, "
            f"before it {point['sibling_accuracy_lookahead']:.3f}), AUROC {point['auroc']:.3f}")


def _finished_arms(path: Path, settings: dict) -> dict[str, dict]:
    """Arms of an earlier run into the same folder under the same settings (the arm list aside), by spec: kept,
    not trained again, so arms can be added to a run one invocation at a time."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    same = {k: v for k, v in earlier["settings"].items() if k != "arms"} == {
        k: v for k, v in settings.items() if k != "arms"}
    if not same:
        return {}
    return {arm["spec"]: arm for arm in earlier["arms"]}


def table(arms: list[dict]) -> str:
    columns = (("arm", "arm", "<9", ""), ("layers", "layers", ">7", ""), ("hidden", "hidden_size", ">7", ""),
               ("params", "parameters", ">9", ""), ("examples", "train_examples", ">9", ""),
               ("steps", "steps", ">6", ""),
               ("train s", "train_s", ">8", ".0f"), ("CPU s", "train_cpu_s", ">7", ".0f"),
               ("sib acc", "sibling_accuracy", ">8", ".3f"), ("last", "sibling_accuracy_last", ">6", ".3f"),
               ("ahead", "sibling_accuracy_lookahead", ">6", ".3f"), ("left1", "sibling_accuracy_left1", ">6", ".3f"),
               ("left2+", "sibling_accuracy_left2plus", ">7", ".3f"), ("AUROC", "auroc", ">6", ".3f"),
               ("AUROC ahead", "auroc_lookahead", ">12", ".3f"), ("pairs", "pairs", ">6", ""),
               ("ahead pairs", "pairs_lookahead", ">12", ""))
    header = "".join(f"{title:{align}}" for title, _, align, _ in columns)
    lines = [header, "-" * len(header)]
    for arm in arms:
        lines.append("".join(f"{arm[key]:{align}{form}}" if arm.get(key) is not None else f"{'-':{align}}"
                             for _, key, align, form in columns))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and data order")
    parser.add_argument("--data-seed", type=int, default=0, help="the task's problem seed (task.data_seed)")
    parser.add_argument("--out", default="experiments/results/probe-prm-lookahead")
    parser.add_argument("--arm", action="append", default=None, metavar="NAME:LAYERS:HIDDEN:EXAMPLES:STEPS",
                        help=f"an arm to train (repeat for several; default {' '.join(DEFAULT_ARMS)})")
    parser.add_argument("--test-problems", type=int, default=50, help="held-out problems (the first of the test split)")
    parser.add_argument("--batch-size", type=int, default=PRM_TRAIN.micro_batch_size)
    parser.add_argument("--lr", type=float, default=PRM_TRAIN.learning_rate)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arms = [(name, int(layers), int(hidden), int(examples), int(steps))
            for name, layers, hidden, examples, steps in (spec.split(":") for spec in args.arm or DEFAULT_ARMS)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = build_char_tokenizer()
    task = get_task("modtarget")
    started = time.perf_counter()
    held_out = labelled_steps(task, task.problems("test", args.test_problems, args.data_seed))
    sets = training_sets(task, [examples for _, _, _, examples, _ in arms], args.data_seed)
    print(f"data: {len(held_out)} held-out steps ({sum(r['label'] for r in held_out)} positive) from "
          f"{args.test_problems} test problems; train sets "
          + ", ".join(f"{size} steps from {problems} problems" for size, (_, problems) in sorted(sets.items()))
          + f" ({time.perf_counter() - started:.0f} s)", flush=True)

    results = {
        "what": "PRM trained on true step labels of modtarget (3-5 operations), held-out sibling ranking",
        "settings": {"seed": args.seed, "data_seed": args.data_seed, "test_problems": args.test_problems,
                     "held_out_steps": len(held_out), "batch_size": args.batch_size, "learning_rate": args.lr,
                     "warmup_steps": PRM_TRAIN.warmup_steps, "schedule": "linear warm-up, linear decay to the arm's "
                     "last step", "max_grad_norm": PRM_TRAIN.max_grad_norm, "weight_decay": PRM_TRAIN.weight_decay,
                     "init": "fresh (lm.build.build_tiny_prm); the loop starts its PRM from the policy's body",
                     "threads": args.threads, "eval_every": args.eval_every, "arms": [":".join(map(str, a))
                                                                                      for a in arms]},
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "note": "2 CPU cores, another job running beside the probe; run under nice, one thread"},
        "arms": [],
    }
    done = _finished_arms(out / "results.json", results["settings"])
    for spec in arms:
        name, layers, hidden, examples, steps = spec
        key = ":".join(map(str, spec))
        if key in done:
            print(f"  {key}: kept from {out / 'results.json'}", flush=True)
            results["arms"].append(done[key])
        else:
            rows, problems = sets[examples]
            results["arms"].append({"spec": key, **train_arm(name, layers, hidden, rows, problems, steps, held_out,
                                                             args, tokenizer)})
        atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    print()
    print(table(results["arms"]))
    print("sib acc: sibling accuracy over every held-out pair; last: pairs of last steps (the choice reads a written "
          "difference); ahead: pairs of earlier steps (the lookahead), of which left1 / left2+: the step leaves one / "
          "two or more digits; AUROC ahead: over the held-out steps before the last")


if __name__ == "__main__":
    main()
