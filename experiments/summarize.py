"""Regenerate the self-training tables (ReST-MCTS*, the seed-only control, ReST-EM, Self-Rewarding) from the
eval.json files of finished runs, and the method comparisons of every `evaluate_round_NN/summary.json` under them.

Usage: python experiments/summarize.py RUN_DIR  (experiment folders named <arm>-seed<N>)
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from rest_mcts.compare import table as compare_table

FIGURES = [
    ("test/greedy/accuracy", "test greedy"),
    ("test/mcts/accuracy", "test MCTS*"),
    ("test/mcts/tokens_per_problem", "MCTS* tok"),
    ("test/pass_at_16/accuracy", "test pass@16"),
    ("ood/greedy/accuracy", "ood greedy"),
    ("ood/mcts/accuracy", "ood MCTS*"),
    ("test/prm/auroc", "PRM AUROC"),
    ("test/prm/sibling_accuracy", "PRM sibling acc"),
    ("test/step_scorer/auroc", "step scorer AUROC"),
    ("test/step_scorer/sibling_accuracy", "step scorer sibling acc"),
    ("test/step_scorer/sibling_pairs", "sibling pairs"),
    ("dev/mcts/answer_margin", "answer margin"),
    ("dev/mcts/accuracy_prm_choice", "dev PRM choice"),
    ("dev/mcts/accuracy_first_path", "dev first path"),
    ("value/auroc", "value AUROC"),
    ("value/auroc_all_nodes", "value AUROC all nodes"),
    ("filter/sound_trace_rate", "sound traces"),
    ("examples/policy", "policy ex"),
    ("search/tokens", "search tokens"),
    ("sample/tokens", "sampled tokens"),
    ("judge/auroc", "judge AUROC"),
    ("pairs/right_order_rate", "pairs in right order"),
]
COUNTS = ("examples/policy", "search/tokens", "sample/tokens", "test/mcts/tokens_per_problem",
          "test/step_scorer/sibling_pairs")


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


def table(results) -> str:
    """Per arm and round, the mean ± spread over seeds of `FIGURES` (`rest_mcts.compare.table`)."""
    return compare_table(results, [(key, title, "{:.0f}" if key in COUNTS else "{:.3f}") for key, title in FIGURES],
                         label="arm")


def length_table(results) -> str:
    """Test accuracy per problem length (`test/<method>/accuracy_len<n>`), greedy / MCTS*, per arm and round (mean over
    seeds); empty when no run has per-length figures."""
    lengths = sorted({int(key.rsplit("accuracy_len", 1)[1]) for seeds in results.values()
                      for per_seed in seeds.values() for row in per_seed.values()
                      for key in row if key.startswith("test/greedy/accuracy_len")})
    if not lengths:
        return ""
    lines = ["| arm | round | " + " | ".join(f"{n} steps: greedy / MCTS*" for n in lengths) + " |",
             "|---|---|" + "---|" * len(lengths)]
    for arm, seeds in sorted(results.items()):
        for round_index in sorted({r for per_seed in seeds.values() for r in per_seed}):
            rows = [per_seed[round_index] for per_seed in seeds.values() if round_index in per_seed]
            cells = []
            for n in lengths:
                keys = [f"test/{method}/accuracy_len{n}" for method in ("greedy", "mcts")]
                pair = [[row[key] for row in rows if key in row] for key in keys]
                cells.append(" / ".join(f"{np.mean(values):.3f}" if values else "-" for values in pair))
            lines.append(f"| {arm} | {round_index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed_gains(results) -> str:
    """Per seed and in the mean over seeds: round-3 test greedy accuracy of ReST-MCTS* and its gains over its round
    0, the control, ReST-EM and Self-Rewarding; and whether MCTS* beat greedy decoding by 10 points in every round."""
    lines, gains = [], defaultdict(list)
    key = "test/greedy/accuracy"
    for seed in sorted(results.get("selftrain", {})):
        main = results["selftrain"][seed]
        last = max(main)
        text = f"seed {seed}: round {last} test greedy {main[last][key]:.3f}"
        for name, rounds in (("round 0", main), *((arm, results.get(arm, {}).get(seed, {}))
                                                  for arm in ("control", "restem", "selfreward"))):
            reference = rounds.get(0 if name == "round 0" else last)
            if reference is not None:
                gain = 100 * (main[last][key] - reference[key])
                gains[name].append(gain)
                text += f", over {name} {gain:+.1f} points"
        margins = [100 * (r["test/mcts/accuracy"] - r[key]) for _, r in sorted(main.items())]
        text += "; MCTS* - greedy on test per round: " + " ".join(f"{m:+.1f}" for m in margins)
        lines.append(text)
    if gains:
        lines.append("mean over seeds: " + ", ".join(f"over {name} {np.mean(values):+.1f} points"
                                                     for name, values in gains.items()))
    return "\n".join(lines)


ARMS = (("selftrain", "ReST-MCTS*"), ("restem", "ReST-EM"), ("selfreward", "Self-Rewarding"), ("control", "control"))


def method_table(results) -> str:
    """The methods side by side: each seed's last-round test accuracy (greedy / MCTS*), the mean and standard
    deviation over seeds, and ReST-MCTS*'s mean lead over the method with its spread over seeds (paired by seed)."""
    seeds = sorted({seed for arm, _ in ARMS for seed in results.get(arm, {})})
    lines = ["| method | " + " | ".join(f"seed {seed}" for seed in seeds)
             + " | mean ± sd | ReST-MCTS* ahead by (points, mean ± sd over seeds) |",
             "|---|" + "---|" * (len(seeds) + 2)]

    def last(arm: str, seed: int) -> dict | None:
        rounds = results.get(arm, {}).get(seed, {})
        return rounds[max(rounds)] if rounds else None

    keys = ("test/greedy/accuracy", "test/mcts/accuracy")
    for arm, name in ARMS:
        if arm not in results:
            continue
        cells, values, leads = [], {key: [] for key in keys}, {key: [] for key in keys}
        for seed in seeds:
            row, main = last(arm, seed), last("selftrain", seed)
            cells.append("-" if row is None else " / ".join(f"{row[key]:.3f}" for key in keys))
            for key in keys:
                if row is not None:
                    values[key].append(row[key])
                    if main is not None:
                        leads[key].append(100 * (main[key] - row[key]))
        mean = " / ".join(f"{np.mean(values[key]):.3f} ± {np.std(values[key]):.3f}" for key in keys)
        lead = ("-" if arm == "selftrain" or not leads[keys[0]] else
                " / ".join(f"{np.mean(leads[key]):+.1f} ± {np.std(leads[key]):.1f}" for key in keys))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} | {lead} |")
    return "\n".join(lines)


def generated_tokens(row: dict) -> float:
    """What a round generated to make its training data: the search's tokens, or the samples' and the judge's."""
    return row.get("search/tokens") or row.get("sample/tokens", 0.0) + row.get("judge/tokens_generated", 0.0)


def token_match(results) -> str:
    """Per arm that matches ReST-MCTS*'s tokens, seed and round: its generated tokens and their ratio to the
    matched ReST-MCTS* round's search tokens."""
    lines = ["| method | seed | " + " | ".join(f"round {n}" for n in (1, 2, 3)) + " |", "|---|---|---|---|---|"]
    for arm, name in ARMS[1:3]:
        for seed, rounds in sorted(results.get(arm, {}).items()):
            main = results.get("selftrain", {}).get(seed, {})
            cells = []
            for index in (1, 2, 3):
                if index in rounds and index in main and main[index].get("search/tokens"):
                    tokens = generated_tokens(rounds[index])
                    cells.append(f"{tokens:,.0f} ({tokens / main[index]['search/tokens']:.3f})")
                else:
                    cells.append("-")
            lines.append(f"| {name} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons(run_dir: Path) -> str:
    """MCTS* against the best other method at each budget, from every evaluation under `run_dir`."""
    lines = []
    from dataclasses import asdict

    from lm.data import read_jsonl
    from rest_mcts.comparison import compare_mcts
    from rest_mcts.methods import MethodRecord

    for summary in sorted(run_dir.glob("*/evaluate_round_*/summary.json")):
        records = summary.parent / "records.jsonl"
        rows = ([asdict(row) for row in compare_mcts(list(read_jsonl(records, MethodRecord)))] if records.exists()
                else json.loads(summary.read_text()).get("mcts_vs_best_other", []))
        if not rows:
            continue
        lines += [f"\n{summary.parent.parent.name} {summary.parent.name}:",
                  "| split | budget | MCTS* | best other | its accuracy | difference | 95% paired interval |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['split']} | {r['budget']} | {r['mcts_accuracy']:.3f} | {r['method']} | "
                  f"{r['other_accuracy']:.3f} | {100 * r['difference']:+.1f} | "
                  f"{100 * r['ci_low']:+.1f} to {100 * r['ci_high']:+.1f} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = load(Path(sys.argv[1]))
    print(table(results))
    print()
    by_length = length_table(results)
    if by_length:
        print(by_length)
        print()
    print(per_seed_gains(results))
    print("\nThe last round's test accuracy, greedy / MCTS*, per method and seed:\n")
    print(method_table(results))
    print("\nTokens generated for each round's training data (ratio to the matched ReST-MCTS* round's search):\n")
    print(token_match(results))
    print(comparisons(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
