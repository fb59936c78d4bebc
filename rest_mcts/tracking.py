"""W&B and the console: one W&B run per `iterate` invocation (offline unless configured), and the round table."""

from __future__ import annotations

import io
import logging
import netrc
import os
import re
from dataclasses import asdict
from typing import Any
from urllib.parse import urlparse

from lm.data import atomic_write_bytes

logger = logging.getLogger(__name__)


def console_logging() -> None:
    """INFO lines with the time on stderr: what the CLIs show while they run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
"""Environment variables whose values `redact` hides."""


def redact(text: str) -> str:
    """`text` with the value of every secret-looking environment variable (`SECRET_NAME`, 8 characters or more)
    replaced by ***: for messages that quote what a library said."""
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= 8:
            text = text.replace(value, "***")
    return text


def wandb_credentials() -> bool:
    """Whether W&B can log in without asking: WANDB_API_KEY, or a ~/.netrc entry for the W&B host
    (WANDB_BASE_URL's, by default api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(configured: str) -> str:
    """The config's mode, else WANDB_MODE, else online only if the user has W&B credentials, else offline."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_credentials() else "offline"


class TrackerError(RuntimeError):
    """W&B did not start its run; the message says why and what to do."""


def wandb_identity(config, job_type: str | None = None) -> dict[str, Any]:
    """What W&B groups and filters a run by: `group` (the comparison: `logging.wandb_group`, else the experiment),
    `job_type` (the method: rest_mcts, rest_em, control; or what the caller names, e.g. evaluate), `tags` (task,
    method, seed) and a readable `name` (the experiment, with the seed unless it names it already)."""
    method = job_type or ("control" if config.control else config.method)
    experiment = config.logging.experiment
    return {"group": config.logging.wandb_group or config.logging.experiment, "job_type": method,
            "tags": [config.task.name, method, f"seed{config.seed}"],
            "name": experiment if experiment.endswith(f"seed{config.seed}") else f"{experiment}-seed{config.seed}"}


class Tracker:
    """Thin wrapper over a W&B run: `log(round, metrics)` with step = round, `finish()`."""

    def __init__(self, project: str, group: str, mode: str, run_dir: str, config: dict[str, Any], name: str,
                 init_timeout_s: float = 90.0, job_type: str | None = None, tags: list[str] | None = None):
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        if os.environ.get("WANDB_MODE") == "":
            del os.environ["WANDB_MODE"]  # set but empty: wandb rejects it even when a mode is passed
        self.mode = resolve_wandb_mode(mode)
        try:
            self.run = wandb.init(
                project=project, group=group, name=name, config=config, dir=run_dir, mode=self.mode,
                job_type=job_type, tags=tags,
                reinit="finish_previous", settings=wandb.Settings(init_timeout=init_timeout_s),
            )
        except Exception as error:  # wandb raises its own errors (CommError, UsageError, AuthenticationError, ...)
            message = redact(str(error)).strip().splitlines()
            raise TrackerError(f"W&B could not start its {self.mode} run ({type(error).__name__}: "
                               f"{message[0] if message else 'no message'}); "
                               f"check the W&B login and network, or use --logging.wandb_mode offline") from None
        logger.info("W&B run %s (%s) in %s", self.run.id, self.mode, self.run.dir)
        self._length_rows: list[list] = []

    def log(self, round_index: int, metrics: dict[str, float]) -> None:
        """A round's metrics at W&B step = round, and the per-length accuracy of every round so far as the table
        `accuracy_by_length` (round, split, method, length, accuracy)."""
        import wandb

        self._length_rows = [row for row in self._length_rows if row[0] != round_index]
        self._length_rows += length_rows(round_index, metrics)
        extra = {}
        if self._length_rows:
            extra["accuracy_by_length"] = wandb.Table(columns=["round", "split", "method", "length", "accuracy"],
                                                      data=self._length_rows)
        self.run.log({"round": round_index, **metrics, **extra}, step=round_index)

    def log_pages(self, round_index: int, pages: dict[str, str], prefix: str = "trees") -> None:
        """HTML pages (`rest_mcts.tree_pages`) as W&B media, `<prefix>/<name>` at step = round."""
        if not pages:
            return
        import wandb

        media = {f"{prefix}/{name}": wandb.Html(text, inject=False, data_is_not_path=True)
                 for name, text in pages.items()}
        self.run.log({"round": round_index, **media}, step=round_index)

    def log_rows(self, rows: list) -> None:
        """An evaluation's summary rows (dataclasses): a W&B table, each figure as
        `<split>/<method>/<budget>/<figure>` (budget 0: greedy, which has none), and per split the accuracy against
        tokens per problem as W&B line series (`accuracy_vs_tokens/<split>`, one line per method)."""
        import wandb

        records = [asdict(row) for row in rows]
        if not records:
            return
        columns = list(records[0])
        metrics = {"evaluation": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in records])}
        for split, lines in accuracy_lines(records).items():
            metrics[f"accuracy_vs_tokens/{split}"] = wandb.plot.line_series(
                xs=[xs for xs, _ in lines.values()], ys=[ys for _, ys in lines.values()], keys=list(lines),
                title=f"{split}: accuracy against generated tokens per problem", xname="tokens per problem")
        for record in records:
            key = f"{record['split']}/{record['method']}/{record['budget']}"
            for figure in ("accuracy", "ci_low", "ci_high", "tokens_per_problem", "seconds_per_problem"):
                metrics[f"{key}/{figure}"] = record[figure]
        self.run.log(metrics)

    def finish(self) -> None:
        self.run.finish()


def length_rows(round_index: int, metrics: dict[str, Any]) -> list[list]:
    """[round, split, method, length, accuracy] for every `<split>/<method>/accuracy_len<n>` of `metrics`."""
    rows = []
    for key, value in metrics.items():
        if "/accuracy_len" in key and key.count("/") == 2:
            split, method, name = key.split("/")
            rows.append([round_index, split, method, int(name.removeprefix("accuracy_len")), float(value)])
    return sorted(rows, key=lambda row: (row[0], row[1], row[2], row[3]))


def accuracy_lines(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """split -> method -> (tokens per problem, accuracy) over its budgets, fewest tokens first, from an evaluation's
    summary records (`rest_mcts.comparison.SummaryRow` as dicts)."""
    lines: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for record in records:
        lines.setdefault(record["split"], {}).setdefault(record["method"], []).append(
            (float(record["tokens_per_problem"]), float(record["accuracy"])))
    return {split: {method: ([x for x, _ in sorted(points)], [y for _, y in sorted(points)])
                    for method, points in methods.items()} for split, methods in lines.items()}


TABLE_COLUMNS = [
    ("round", "round", "{:d}"),
    ("test/greedy/accuracy", "test greedy", "{:.3f}"),
    ("test/mcts/accuracy", "test MCTS*", "{:.3f}"),
    ("test/greedy/tokens_per_problem", "greedy tok", "{:.0f}"),
    ("test/mcts/tokens_per_problem", "MCTS* tok", "{:.0f}"),
    ("ood/greedy/accuracy", "ood greedy", "{:.3f}"),
    ("ood/mcts/accuracy", "ood MCTS*", "{:.3f}"),
    ("test/prm/auroc", "PRM AUROC", "{:.3f}"),
    ("test/prm/sibling_accuracy", "PRM sib", "{:.3f}"),
    ("test/step_scorer/auroc", "scorer AUROC", "{:.3f}"),
    ("test/step_scorer/sibling_accuracy", "scorer sib", "{:.3f}"),
    ("value/auroc", "value AUROC", "{:.3f}"),
    ("examples/policy", "policy ex", "{:d}"),
    ("examples/value", "value ex", "{:d}"),
    ("search/tokens", "search tok", "{:d}"),
    ("timing_s/search", "search s", "{:.0f}"),
    ("timing_s/train_policy", "policy s", "{:.0f}"),
    ("timing_s/train_prm", "prm s", "{:.0f}"),
    ("timing_s/evaluate", "eval s", "{:.0f}"),
]


def length_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Columns of per-length accuracy (`<split>/<method>/accuracy_len<n>`, test then ood, greedy then MCTS*) found
    in `rows`, shortest first."""
    keys = {key for row in rows for key in row if "/accuracy_len" in key}
    def order(key: str):
        split, method, name = key.split("/")
        return (split != "test", int(name.removeprefix("accuracy_len")), method != "greedy")
    return [(key, f"{key.split('/')[0]} {key.split('/')[2].removeprefix('accuracy_')} "
                  f"{'greedy' if key.split('/')[1] == 'greedy' else 'MCTS*'}", "{:.3f}")
            for key in sorted(keys, key=order) if key.split("/")[1] in ("greedy", "mcts")]


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]] | None = None) -> str:
    """A plain-text table of the rounds' metrics (missing values shown as '-'); `columns` default to
    `TABLE_COLUMNS`."""
    columns = columns or TABLE_COLUMNS
    header = [title for _, title, _ in columns]
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            if value is None:
                cells.append("-")
            else:
                cells.append(fmt.format(int(value) if "d}" in fmt else value))
        body.append(cells)
    widths = [max(len(header[i]), *(len(cells[i]) for cells in body)) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in body]
    return "\n".join(lines)


def plot_length_accuracy(rows: list[dict[str, Any]], path) -> bool:
    """Greedy and MCTS* test accuracy per problem length, one line per round (`accuracy_by_length.png`); False when
    the rows hold no per-length accuracy. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key, _, _ in length_columns(rows) if key.startswith("test/")]
    lengths = sorted({int(key.rsplit("accuracy_len", 1)[1]) for key in keys})
    if not lengths:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, method, title in ((axes[0], "greedy", "greedy decoding"), (axes[1], "mcts", "MCTS*")):
        for row in rows:
            values = [row.get(f"test/{method}/accuracy_len{n}") for n in lengths]
            axis.plot(lengths, [float("nan") if v is None else v for v in values], marker="o",
                      label=f"round {int(row['round'])}")
        axis.set_title(f"test accuracy, {title}")
        axis.set_xlabel("problem length (steps)")
        axis.set_xticks(lengths)
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend()
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())
    return True
