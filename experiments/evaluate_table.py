"""A compact markdown table from one or more `python -m rest_mcts.evaluate` outputs: per split and method,
accuracy and tokens per problem at each budget, read from their summary.json files; then MCTS* against the
best other method at equal tokens, recomputed from records.jsonl (`rest_mcts.comparison.compare_mcts`).

Usage: python experiments/evaluate_table.py experiments/results/search-methods-round3/<folder> [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(folder: Path) -> str:
    summary = json.loads((folder / "summary.json").read_text())
    meta, rows = summary["meta"], summary["rows"]
    budgets = sorted({row["budget"] for row in rows if row["budget"]})
    lines = [f"{folder.name}: temperature {meta['temperature']}, seeds {meta['seeds']}, "
             f"cells: accuracy [95% interval] @ tokens per problem", "",
             "| split | method | " + " | ".join(f"budget {b}" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    methods: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        methods.setdefault((row["split"], row["method"]), {})[row["budget"]] = row
    for (split, method), by_budget in methods.items():
        cells = []
        for index, budget in enumerate(budgets):
            row = by_budget.get(budget)
            if row is None and index == 0:
                row = by_budget.get(0)  # greedy has no budget: shown once
            cells.append("" if row is None else f"{row['accuracy']:.3f} [{row['ci_low']:.2f}-{row['ci_high']:.2f}] "
                                                f"@{row['tokens_per_problem']:.0f}")
        lines.append(f"| {split} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison(folder: Path) -> str:
    from lm.data import read_jsonl
    from rest_mcts.comparison import compare_mcts
    from rest_mcts.evaluate import format_comparisons
    from rest_mcts.methods import MethodRecord

    rows = compare_mcts(list(read_jsonl(folder / "records.jsonl", MethodRecord)))
    return f"{folder.name}: MCTS* against the best other method at equal tokens\n\n" + format_comparisons(rows)


if __name__ == "__main__":
    print("\n\n".join(table(Path(folder)) + "\n\n" + comparison(Path(folder)) for folder in sys.argv[1:]))
