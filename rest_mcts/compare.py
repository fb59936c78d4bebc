"""Compare finished runs offline, from their folders: per method (ReST-MCTS*, ReST-EM, the seed-only control; read
from each run's config.yaml) and round, the mean and spread over seeds of the figures a comparison looks at, as a
table; and test accuracy against the round per method, as a plot. The same grouping W&B's run table makes from the
runs' `group`, `job_type` and tags, without a server.

Command line: python -m rest_mcts.compare RUN [RUN ...] [--out PLOT.png]
   (a RUN is an iterate run folder, runs/<experiment>, or a folder of them, as experiments/self_training.sh makes)
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from lm.data import atomic_write_bytes

FIGURES = [
    ("test/greedy/accuracy", "test greedy", "{:.3f}"),
    ("test/mcts/accuracy", "test MCTS*", "{:.3f}"),
    ("test/mcts/tokens_per_problem", "MCTS* tok", "{:.0f}"),
    ("ood/greedy/accuracy", "ood greedy", "{:.3f}"),
    ("test/prm/sibling_accuracy", "PRM sib", "{:.3f}"),
    ("test/step_scorer/sibling_accuracy", "scorer sib", "{:.3f}"),
    ("value/auroc", "value AUROC", "{:.3f}"),
    ("examples/policy", "policy ex", "{:.0f}"),
]
"""(eval.json key, column title, format) of the table."""

Results = dict[str, dict[int, dict[int, dict]]]
"""method -> seed -> round -> eval.json"""


def run_folders(paths: list[Path]) -> list[Path]:
    """Each path that is a run folder (it holds config.yaml), and the run folders one level below the others."""
    folders = []
    for path in paths:
        if not path.is_dir():
            raise ValueError(f"{path}: not a folder")
        found = [path] if (path / "config.yaml").exists() else sorted(
            child for child in path.iterdir() if (child / "config.yaml").exists())
        if not found:
            raise ValueError(f"{path}: neither a run folder (config.yaml) nor a folder of run folders")
        folders += found
    return folders


def method_of(config: dict) -> str:
    """What a run compares as: control for the seed-only control, else its --method."""
    return "control" if config.get("control") else config.get("method", "rest_mcts")


def load(folders: list[Path]) -> Results:
    """The finished rounds (DONE) of every run, by method, seed and round."""
    results: Results = defaultdict(lambda: defaultdict(dict))
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        method, seed = method_of(config), int(config.get("seed", 0))
        if seed in results[method] and results[method][seed]:
            raise ValueError(f"{folder}: a second {method} run of seed {seed}; compare one run per method and seed")
        for eval_file in sorted(folder.glob("round_*/eval.json")):
            if (eval_file.parent / "DONE").exists():
                results[method][seed][int(eval_file.parent.name.split("_")[1])] = json.loads(eval_file.read_text())
    return results


def cell(values: list[float], fmt: str) -> str:
    """Mean ± standard deviation over seeds (one value alone; '-' for none)."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values))}"


def table(results: Results, figures=FIGURES, label: str = "method") -> str:
    """A Markdown table: per method and round, the seeds and each figure's mean ± spread over them."""
    lines = [f"| {label} | round | seeds | " + " | ".join(title for _, title, _ in figures) + " |",
             "|---|---|---|" + "---|" * len(figures)]
    for method, seeds in sorted(results.items()):
        for round_index in sorted({r for per_seed in seeds.values() for r in per_seed}):
            rows = [per_seed[round_index] for per_seed in seeds.values() if round_index in per_seed]
            cells = [cell([row[key] for row in rows if key in row], fmt) for key, _, fmt in figures]
            lines.append(f"| {method} | {round_index} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: Results, path: Path) -> None:
    """Test accuracy (greedy decoding and MCTS*) against the round, one line per method: mean over seeds, the
    spread (standard deviation) as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, key, title in ((axes[0], "test/greedy/accuracy", "greedy decoding"),
                             (axes[1], "test/mcts/accuracy", "MCTS*")):
        for method, seeds in sorted(results.items()):
            rounds = sorted({r for per_seed in seeds.values() for r in per_seed})
            values = [[per_seed[r][key] for per_seed in seeds.values() if r in per_seed and key in per_seed[r]]
                      for r in rounds]
            kept = [(r, v) for r, v in zip(rounds, values) if v]
            if kept:
                axis.errorbar([r for r, _ in kept], [np.mean(v) for _, v in kept], yerr=[np.std(v) for _, v in kept],
                              marker="o", capsize=3, label=f"{method} ({len(seeds)} seeds)")
        axis.set_title(f"test accuracy, {title}")
        axis.set_xlabel("round")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend()
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="Run folders, or folders of run folders.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Where to write the plot (default: compare.png in the first folder given).")
    args = parser.parse_args(argv)
    try:
        results = load(run_folders(args.runs))
    except (ValueError, OSError, yaml.YAMLError) as error:
        parser.exit(2, f"error: {error}\n")
    if not any(rounds for seeds in results.values() for rounds in seeds.values()):
        parser.exit(2, f"error: {', '.join(map(str, args.runs))}: no finished round (round_NN/DONE) to compare\n")
    print(table(results))
    out = args.out or args.runs[0] / "compare.png"
    plot(results, out)
    print(f"\nplot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
