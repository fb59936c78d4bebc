"""What every stage of a round may use (`Context`: the configuration, the run folder, the task and its problems, the
run's actors) and the shape of a stage (`Stage`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rest_mcts import seeds
from rest_mcts.actors import Actors
from rest_mcts.config import RunConfig, check_values
from rest_mcts.problems import RunProblems
from rest_mcts.rounds import Round
from rest_mcts.search_models import SamplerSettings
from rest_mcts.tasks import Task, load_task

logger = logging.getLogger("rest_mcts")


@dataclass
class Context:
    """What every stage may use: the config, the run folder, the task and its problems, and the run's actors."""

    config: RunConfig
    run_dir: Path
    task: Task
    problems: RunProblems
    actors: Actors

    @classmethod
    def of(cls, config: RunConfig, run_dir: Path) -> Context:
        check_values(config)
        task = load_task(config.task, config.model.policy_model)
        return cls(config, run_dir, task, RunProblems.of(config, task),
                   Actors(config.cluster, config.logging.experiment))

    def search_pool(self, round_: Round, policy: Path, prm: Path | None, temperature: float, purpose: str,
                    greedy_first: bool = False):
        settings = SamplerSettings.from_config(
            self.config, str(policy), str(prm) if prm else "", temperature,
            seeds.round_sampling_seed(self.config.seed, round_.index), greedy_first)
        return self.actors.search_pool(settings, f"r{round_.index:02d}-{purpose}")


Stage = tuple[str, Callable[[Context, Round], dict[str, float]]]
"""A stage's name (in stages.json and `timing_s/<name>`) and its body."""
