"""A run folder's rounds: each round's folder, the record of its finished stages (`stages.json`), running a stage
once (a resumed run skips the recorded ones) and the round's summary (`eval.json`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm.data import atomic_write_text

logger = logging.getLogger("rest_mcts")

def is_wall_clock(key: str) -> bool:
    """Whether metric `key` measures wall-clock time (a stage's seconds, a rate per second): those are kept out of
    eval.json, in timing.json, so that two runs with one seed write the same eval.json."""
    return key.startswith(("timing_s/", "perf/")) or key.endswith("_per_s")


@dataclass(frozen=True)
class Round:
    """One round folder (`<run>/round_NN`) and the record of its finished stages."""

    index: int
    path: Path

    @classmethod
    def of(cls, run_dir: Path, index: int) -> Round:
        return cls(index, run_dir / f"round_{index:02d}")

    @property
    def previous(self) -> Round:
        if self.index == 0:
            raise ValueError("round 0 has no previous round")
        return Round.of(self.path.parent, self.index - 1)

    @property
    def done(self) -> bool:
        """Whether DONE exists: written last, so a round without it is resumed, not trusted."""
        return (self.path / "DONE").exists()

    @property
    def policy(self) -> Path:
        return self.path / "policy"

    @property
    def prm(self) -> Path:
        return self.path / "prm"

    @property
    def verifier(self) -> Path:
        """The verifier trained in this round (`verifier.train_in_rounds`); absent when none was."""
        return self.path / "verifier"

    @property
    def has_verifier(self) -> bool:
        """Whether this round holds a verifier checkpoint (trained here or carried forward)."""
        return (self.verifier / "config.json").exists()

    def stages(self) -> dict[str, dict[str, Any]]:
        file = self.path / "stages.json"
        return json.loads(file.read_text()) if file.exists() else {}

    def record(self, stage: str, seconds: float, metrics: dict[str, float]) -> None:
        stages = self.stages()
        stages[stage] = {"seconds": seconds, "metrics": metrics}
        atomic_write_text(self.path / "stages.json", json.dumps(stages, indent=2))

    def summary(self) -> dict[str, float]:
        """Every stage's metrics and seconds (`timing_s/<stage>`), flattened."""
        summary: dict[str, float] = {}
        for stage, record in self.stages().items():
            summary.update(record["metrics"])
            summary[f"timing_s/{stage}"] = record["seconds"]
        return summary

    def finish(self) -> None:
        """Write eval.json (the metrics that seed, configuration and installed versions fix), timing.json (the
        wall-clock figures, `is_wall_clock`), then DONE."""
        summary = self.summary()
        timing = {key: value for key, value in summary.items() if is_wall_clock(key)}
        metrics = {key: value for key, value in summary.items() if key not in timing}
        atomic_write_text(self.path / "eval.json", json.dumps(metrics, indent=2, sort_keys=True))
        atomic_write_text(self.path / "timing.json", json.dumps(timing, indent=2, sort_keys=True))
        atomic_write_text(self.path / "DONE", time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def read_summary(self) -> dict[str, float]:
        """eval.json and timing.json together (a run written before timing.json had both in eval.json)."""
        summary = json.loads((self.path / "eval.json").read_text())
        timing = self.path / "timing.json"
        if timing.exists():
            summary.update(json.loads(timing.read_text()))
        return summary


def run_stage(round_: Round, name: str, body: Callable[[], dict[str, float]]) -> None:
    """Run one stage unless it is recorded as finished; time it and record its metrics."""
    if name in round_.stages():
        logger.info("round %d: %s already done, skipping", round_.index, name)
        return
    logger.info("round %d: %s ...", round_.index, name)
    started = time.time()
    metrics = body()
    seconds = time.time() - started
    round_.record(name, seconds, metrics)
    logger.info("round %d: %s done in %.1f s %s", round_.index, name, seconds,
                " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


def finished_rounds(run_dir: Path) -> list[int]:
    """Indices of the rounds of `run_dir` whose DONE file exists, ascending."""
    return sorted(int(path.parent.name.split("_")[1]) for path in run_dir.glob("round_*/DONE"))
