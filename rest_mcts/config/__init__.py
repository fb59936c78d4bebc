"""The run configuration: one frozen dataclass per section (`sections`, filled from YAML files and flags by
`rest_mcts.flags`), and the checks that read the configuration alone (`checks`).

Every field has a type, a default (from the ReST-MCTS* paper/official code or measured on the embedded default) and
a one-line docstring, which is also its `--help` text and its line in docs/configuration.md.
"""

from __future__ import annotations

from rest_mcts.config.checks import (
    RANGES,
    ConfigError,
    check_values,
)
from rest_mcts.config.cluster import PLACEMENT_STRATEGIES, ClusterConfig
from rest_mcts.config.engine import BACKENDS, ENGINE_PRM, EngineConfig
from rest_mcts.config.methods import SELF_REWARDING_JUDGES, RestEMConfig, SelfRewardingConfig
from rest_mcts.config.sections import (
    ANSWER_FORMATS,
    DATA_TASK_FIELDS,
    VERIFIER_DATA,
    VERIFIER_EVAL_AS,
    WANDB_MODES,
    EvalConfig,
    LoggingConfig,
    ModelConfig,
    RunConfig,
    SandboxConfig,
    SearchConfig,
    TaskConfig,
    TracesConfig,
    TrainConfig,
    ValuesConfig,
    VerifierConfig,
)
from trainers.spec import VERIFIER_KINDS

__all__ = [
    "ANSWER_FORMATS",
    "ClusterConfig",
    "BACKENDS",
    "ConfigError",
    "ENGINE_PRM",
    "EngineConfig",
    "DATA_TASK_FIELDS",
    "EvalConfig",
    "LoggingConfig",
    "ModelConfig",
    "PLACEMENT_STRATEGIES",
    "RANGES",
    "RestEMConfig",
    "RunConfig",
    "SandboxConfig",
    "SELF_REWARDING_JUDGES",
    "SearchConfig",
    "SelfRewardingConfig",
    "TaskConfig",
    "TracesConfig",
    "TrainConfig",
    "VERIFIER_DATA",
    "VERIFIER_EVAL_AS",
    "VERIFIER_KINDS",
    "ValuesConfig",
    "VerifierConfig",
    "WANDB_MODES",
    "check_values",
]
