"""The progress the search workers and trainer ranks report through Ray's metrics API (`ray.util.metrics`), so the
Ray dashboard and Prometheus show a round while it runs. Names, types and tags: docs/scaling.md.

Every metric carries the tags `TAG_KEYS`: the actor's role, the label of the call it serves (the stage code's
label, e.g. "round 2 search" or "round 2 train_policy") and its index (search worker i, trainer rank i). Ray
prefixes each name with `ray_` on its metrics endpoint, and a counter's with the suffix `_total`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ray
from ray.util.metrics import Counter, Gauge, Histogram

from search.types import ProposedStep

SEARCH_WORKER = "search_worker"
TRAINER_RANK = "trainer_rank"
TAG_KEYS = ("role", "label", "worker")
SHARD_SECONDS_BOUNDARIES = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]
"""Buckets of `rest_mcts_shard_seconds`: from a tiny CPU shard to an hour-long GPU one."""


def call_label() -> str:
    """The label of the Ray task this actor runs now: its name up to the last ':' (`SearchPool.map` names each
    call f"{label}:{method}[first problem..]"), the whole name when it has no ':', '' outside a Ray worker."""
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return ""
    name = ray.get_runtime_context().get_task_name() or ""
    return name.rpartition(":")[0] or name


class SearchWorkerMetrics:
    """A search worker's counters: trees finished, policy tokens generated, seconds per shard."""

    def __init__(self, worker_index: int):
        self.tags = {"role": SEARCH_WORKER, "label": "", "worker": str(worker_index)}
        self.trees_finished = Counter(
            "rest_mcts_trees_finished", "MCTS* trees the search worker finished (counted as each shard returns)",
            TAG_KEYS)
        self.tokens_generated = Counter(
            "rest_mcts_tokens_generated", "tokens the worker's policy generated: every step proposed, sampled or "
            "decoded greedily, kept or not, rollouts included (counted as each batch of steps returns)", TAG_KEYS)
        self.shard_seconds = Histogram(
            "rest_mcts_shard_seconds", "wall seconds of one call on a shard of problems (search, greedy, sample, "
            "run_call)", SHARD_SECONDS_BOUNDARIES, (*TAG_KEYS, "method"))

    def start_call(self) -> None:
        """Tag what follows with the label of the call this worker now serves (`call_label`)."""
        self.tags = {**self.tags, "label": call_label()}

    def count_steps(self, steps: Sequence[ProposedStep]) -> None:
        tokens = sum(step.num_tokens for step in steps)
        if tokens > 0:
            self.tokens_generated.inc(tokens, self.tags)

    def finish_shard(self, method: str, seconds: float, trees: int = 0) -> None:
        if trees > 0:
            self.trees_finished.inc(trees, self.tags)
        self.shard_seconds.observe(seconds, {**self.tags, "method": method})


class TrainerRankMetrics:
    """A trainer rank's optimizer steps and the loss of its last step."""

    def __init__(self, rank: int):
        self.tags = {"role": TRAINER_RANK, "label": "", "worker": str(rank)}
        self.steps = Counter("rest_mcts_train_steps", "optimizer steps the trainer rank finished", TAG_KEYS)
        self.loss = Gauge("rest_mcts_train_loss", "the trainer rank's loss at its last optimizer step (the mean "
                          "over the step's micro-batches on this rank)", TAG_KEYS)
        self.total_steps = Gauge("rest_mcts_train_total_steps", "optimizer steps the training call on this rank "
                                 "will take", TAG_KEYS)

    def reporter(self, label: str):
        """The `trainers.engine.StepCallback` of one training call labelled `label`."""
        tags = {**self.tags, "label": label}

        def report(step: int, total_steps: int, loss: float) -> None:
            if step == 1:
                self.total_steps.set(total_steps, tags)
            self.steps.inc(1, tags)
            self.loss.set(loss, tags)

        return report
