"""The Best-of-N verifier tables of several studies (`experiments/verifier_study.py`) side by side, from their
summary.json.

Usage: python experiments/verifier_table.py STUDY_DIR... (a study folder holds summary.json; its task is read from
its study.json, else the run's config.yaml one level up, else the folder's parent name). Prints, per split, one
table of accuracy (tokens per problem) per method and task, one of the verifiers' AUROC, and one of each verifier
method against self-consistency at equal total tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def task_name(study: Path) -> str:
    meta = study / "study.json"
    if meta.exists():
        return json.loads(meta.read_text())["task"]
    config = study.parent / "config.yaml"
    if config.exists():
        import yaml

        return yaml.safe_load(config.read_text())["task"]["name"]
    return study.parent.name


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    studies = {}
    for path in paths:
        summary = Path(path) / "summary.json"
        if not summary.exists():
            print(f"error: {summary}: no such file (run python experiments/verifier_study.py first)", file=sys.stderr)
            return 2
        studies[task_name(Path(path))] = json.loads(summary.read_text())
    tasks = list(studies)
    for split in ("test", "ood"):
        rows: dict[str, dict[str, dict]] = {}
        for task, summary in studies.items():
            for row in summary.get(split, []):
                rows.setdefault(row["method"], {})[task] = row
        if not rows:
            continue
        print(f"### {split}: accuracy (tokens per problem)\n")
        print("| method | " + " | ".join(tasks) + " |")
        print("|---|" + "---|" * len(tasks))
        for method, by_task in rows.items():
            cells = [f"{by_task[t]['accuracy']:.3f} ({by_task[t]['tokens']:.0f})" if t in by_task else ""
                     for t in tasks]
            print(f"| {method} | " + " | ".join(cells) + " |")
        print(f"\n### {split}: verifier AUROC against the oracle labels, and self-consistency at equal total tokens\n")
        print("| method | " + " | ".join(f"{t} AUROC | {t} SC at equal tokens" for t in tasks) + " |")
        print("|---|" + "---|---|" * len(tasks))
        for method, by_task in rows.items():
            if not method.startswith("best_of_"):
                continue
            cells = []
            for task in tasks:
                row = by_task.get(task, {})
                auroc = row.get("auroc")
                equal = row.get("self_consistency_at_equal_tokens")
                cells.append("" if auroc is None else f"{auroc:.3f}")
                cells.append("" if not equal else f"{equal['accuracy']:.3f} ({equal['samples']} samples)")
            print(f"| {method} | " + " | ".join(cells) + " |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
