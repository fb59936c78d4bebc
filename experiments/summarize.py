"""Regenerate the self-training vs control table from the eval.json files of finished runs.

Usage: python experiments/summarize.py RUN_DIR  (experiment folders named <arm>-seed<N>)
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

FIGURES = [
    ("test/greedy/accuracy", "test greedy"),
    ("test/mcts/accuracy", "test MCTS*"),
    ("ood/greedy/accuracy", "ood greedy"),
    ("ood/mcts/accuracy", "ood MCTS*"),
    ("test/prm/auroc", "PRM AUROC"),
    ("test/prm/sibling_accuracy", "PRM sibling acc"),
    ("dev/mcts/answer_margin", "answer margin"),
    ("dev/mcts/accuracy_prm_choice", "dev PRM choice"),
    ("dev/mcts/accuracy_first_path", "dev first path"),
    ("value/auroc", "value AUROC"),
    ("filter/sound_trace_rate", "sound traces"),
    ("examples/policy", "policy ex"),
    ("search/tokens", "search tokens"),
]


def load(run_dir: Path) -> dict[str, dict[int, dict[int, dict]]]:
    """arm -> seed -> round -> eval.json"""
    results: dict = defaultdict(lambda: defaultdict(dict))
    for eval_file in sorted(run_dir.glob("*-seed*/round_*/eval.json")):
        match = re.fullmatch(r"(.+)-seed(\d+)", eval_file.parent.parent.name)
        if match is None or not (eval_file.parent / "DONE").exists():
            continue
        round_index = int(eval_file.parent.name.split("_")[1])
        results[match.group(1)][int(match.group(2))][round_index] = json.loads(eval_file.read_text())
    return results


def cell(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values))}"


def table(results) -> str:
    lines = ["| arm | round | seeds | " + " | ".join(title for _, title in FIGURES) + " |",
             "|---|---|---|" + "---|" * len(FIGURES)]
    for arm, seeds in sorted(results.items()):
        rounds = sorted({r for per_seed in seeds.values() for r in per_seed})
        for round_index in rounds:
            rows = [per_seed[round_index] for per_seed in seeds.values() if round_index in per_seed]
            cells = []
            for key, _ in FIGURES:
                values = [row[key] for row in rows if key in row]
                cells.append(cell(values, "{:.0f}" if key in ("examples/policy", "search/tokens") else "{:.3f}"))
            lines.append(f"| {arm} | {round_index} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed_gains(results) -> str:
    lines = []
    for seed in sorted(results.get("selftrain", {})):
        main = results["selftrain"][seed]
        control = results.get("control", {}).get(seed, {})
        last = max(main)
        gain0 = main[last]["test/greedy/accuracy"] - main[0]["test/greedy/accuracy"]
        text = f"seed {seed}: round {last} test greedy {main[last]['test/greedy/accuracy']:.3f}, " \
               f"gain over round 0 {100 * gain0:+.1f} points"
        if last in control:
            gain_c = main[last]["test/greedy/accuracy"] - control[last]["test/greedy/accuracy"]
            text += f", over control {100 * gain_c:+.1f} points"
        mcts_ok = all(r["test/mcts/accuracy"] >= r["test/greedy/accuracy"] for r in main.values())
        text += f"; MCTS* >= greedy on test in every round: {mcts_ok}"
        lines.append(text)
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = load(Path(sys.argv[1]))
    print(table(results))
    print()
    print(per_seed_gains(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
