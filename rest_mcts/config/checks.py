"""The checks of a configuration that read it alone: every number finite and in its range, the choices known, the
fields consistent with each other. What needs the task, its data or the placement plan is checked once per start
by `rest_mcts.preflight.validate`."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from pathlib import Path

from rest_mcts.config.cluster import PLACEMENT_STRATEGIES
from rest_mcts.config.engine import BACKENDS, ENGINE_PRM, MAX_ENGINE_TEMPERATURE
from rest_mcts.config.methods import SELF_REWARDING_JUDGES
from rest_mcts.config.sections import (
    ANSWER_FORMATS,
    VERIFIER_DATA,
    VERIFIER_EVAL_AS,
    WANDB_MODES,
    RunConfig,
    TaskConfig,
)
from rest_mcts.recipes import RECIPES
from search.value_inference import VALUE_NODES, VALUE_TARGETS
from trainers.spec import VERIFIER_KINDS


def _validate_cluster(config: RunConfig) -> None:
    """The checks of the cluster section's own values (whether the placement plan they give fits the nodes:
    `rest_mcts.preflight.validate`)."""
    cluster = config.cluster
    if cluster.nodes < 1:
        raise ConfigError(f"--cluster.nodes {cluster.nodes}: expected 1 or more")
    if cluster.nodes > 1 and not cluster.ray_address:
        raise ConfigError(f"--cluster.nodes {cluster.nodes}: a local Ray cluster has one node; join a running "
                          f"cluster with --ray-address (e.g. auto, on one of its nodes)")
    if cluster.placement_strategy not in PLACEMENT_STRATEGIES:
        raise ConfigError(f"--cluster.placement_strategy {cluster.placement_strategy!r}: expected one of "
                          f"{PLACEMENT_STRATEGIES}")
    for name in ("cpus_per_worker", "cpus_per_rank"):
        if getattr(cluster, name) <= 0:
            raise ConfigError(f"--cluster.{name} {getattr(cluster, name)}: expected a positive number")
    for name in ("gpus_per_worker", "gpus_per_rank", "gpus_per_node", "cpus_per_node"):
        if getattr(cluster, name) < 0:
            raise ConfigError(f"--cluster.{name} {getattr(cluster, name)}: expected 0 or more")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message says where."""


RANGES: dict[str, tuple[float, float | None]] = {
    "seed": (0, None), "task.seed_problems": (0, None), "task.train_problems": (1, None), "task.data_seed": (0, None),
    "search.exploration_constant": (0, None), "search.unvisited_bonus": (0, None), "search.end_gate": (0, 1),
    "search.kv_store_mb": (0, None), "engine.kv_cache_gb": (1, None), "engine.gpu_memory_utilization": (0, 1),
    "engine.tensor_parallel_size": (0, None), "engine.max_model_len": (0, None), "traces.max_per_problem": (1, None),
    "eval.pass_at_k": (0, None), "eval.answer_margin": (0, 1), "eval.initial_branch": (0, None),
    "search.initial_branch": (0, None), "search.widen_branch": (1, None), "search.widen_below": (0, 1),
    "search.widen_visits": (0, None),
    "verifier.simpo_beta": (1e-12, None), "verifier.simpo_gamma": (0, None), "verifier.dpo_beta": (1e-12, None),
    "verifier.temperature": (1e-12, None), "cluster.timeout_s": (1, None),
    "logging.wandb_init_timeout_s": (1, None), "logging.wandb_trees": (0, None),
    **{f"{name}.{key}": bounds for name in ("policy_train", "prm_train", "verifier_train") for key, bounds in (
        ("gradient_accumulation_steps", (1, None)), ("learning_rate", (1e-12, None)), ("weight_decay", (0, None)),
        ("warmup_steps", (0, None)), ("max_steps", (0, None)), ("epochs", (1, None)), ("seed", (0, None)),
        ("max_grad_norm", (0, None)), ("warm_start_steps", (0, None)), ("round_learning_rate", (0, None)))},
}
"""Numeric fields and the closed range each must lie in (None: unbounded above); 1e-12 stands for "positive".
The other numeric fields are checked where their meaning is (`validate`)."""


def _check_numbers(config: RunConfig) -> None:
    """Every number of the configuration finite (no nan or inf), and each of `RANGES` in its range."""
    for section in fields(config):
        value = getattr(config, section.name)
        items = [(f"{section.name}.{f.name}", getattr(value, f.name)) for f in fields(value)] if is_dataclass(
            value) else [(section.name, value)]
        for name, number in items:
            if isinstance(number, float) and not math.isfinite(number):
                raise ConfigError(f"--{name} {number}: expected a finite number")
            if name in RANGES:
                low, high = RANGES[name]
                if number < low or (high is not None and number > high):
                    expected = ("a positive number" if low == 1e-12 else f"at least {low:g}" if high is None
                                else f"a number in [{low:g}, {high:g}]")
                    raise ConfigError(f"--{name} {number}: expected {expected}")


def check_values(config: RunConfig) -> None:
    """Reject values no run can use, naming the flag: the checks that read the configuration alone (those that
    need the task, its data or the placement plan: `rest_mcts.preflight.validate`)."""
    _check_numbers(config)
    if config.rounds < 0:
        raise ConfigError(f"--rounds {config.rounds}: expected 0 (the warm start only) or more rounds")
    if config.method not in RECIPES:
        raise ConfigError(f"--method {config.method!r}: unknown method; expected one of {sorted(RECIPES)}")
    _check_data_task_values(config.task)
    positive = {
        "task.problems_per_round": config.task.problems_per_round,
        "task.test_problems": config.task.test_problems,
        "search.max_step_tokens": config.search.max_step_tokens,
        "eval.max_simulations": config.eval.max_simulations,
        "cluster.search_workers": config.cluster.search_workers,
        "cluster.trainer_ranks": config.cluster.trainer_ranks,
        "cluster.problems_per_task": config.cluster.problems_per_task,
        "policy_train.micro_batch_size": config.policy_train.micro_batch_size,
        "rest_em.samples_per_problem": config.rest_em.samples_per_problem,
        "self_rewarding.samples_per_problem": config.self_rewarding.samples_per_problem,
        "values.mc_completions": config.values.mc_completions,
        "prm_train.micro_batch_size": config.prm_train.micro_batch_size,
        "model.hidden_size": config.model.hidden_size,
        "model.num_layers": config.model.num_layers,
        "model.num_heads": config.model.num_heads,
        "model.intermediate_size": config.model.intermediate_size,
        "model.max_positions": config.model.max_positions,
    }
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"--{name} {value}: expected a positive integer")
    _validate_shapes_and_sizes(config)
    if config.search.temperature <= 0 or config.eval.temperature <= 0:
        raise ConfigError("--search.temperature and --eval.temperature: expected positive temperatures")
    if not 0 <= config.eval.dev_problems < config.task.train_problems:
        raise ConfigError(f"--eval.dev_problems {config.eval.dev_problems}: expected 0 or more, and fewer than "
                          f"--task.train_problems ({config.task.train_problems}), from whose end they are held out")
    if config.values.target not in VALUE_TARGETS:
        raise ConfigError(f"--values.target {config.values.target!r}: expected one of {VALUE_TARGETS}")
    if config.values.unsolved_trees not in ("terminals", "all", "none"):
        raise ConfigError(f"--values.unsolved_trees {config.values.unsolved_trees!r}: expected terminals, all or none")
    if config.values.nodes not in VALUE_NODES:
        raise ConfigError(f"--values.nodes {config.values.nodes!r}: expected one of {VALUE_NODES}")
    if config.search.decode not in ("cached", "generate"):
        raise ConfigError(f"--search.decode {config.search.decode!r}: expected 'cached' or 'generate'")
    if config.search.backend not in BACKENDS:
        raise ConfigError(f"--search.backend {config.search.backend!r}: expected one of {BACKENDS}")
    if config.engine.prm not in ENGINE_PRM:
        raise ConfigError(f"--engine.prm {config.engine.prm!r}: expected one of {ENGINE_PRM}")
    if config.engine.block_size < 1 or (config.search.backend == "vllm" and config.cluster.gpus_per_worker == 0
                                        and config.engine.block_size % 32):
        raise ConfigError(f"--engine.block_size {config.engine.block_size}: expected a positive multiple of 32 "
                          f"(vLLM's CPU attention takes no other)")
    if config.search.backend == "vllm":
        for flag, value in (("--search.temperature", config.search.temperature),
                            ("--eval.temperature", config.eval.temperature),
                            ("--verifier.temperature", config.verifier.temperature)):
            if value > MAX_ENGINE_TEMPERATURE:
                raise ConfigError(f"{flag} {value}: vLLM samples at temperatures up to {MAX_ENGINE_TEMPERATURE} "
                                  f"(--search.backend vllm); use the hf backend for hotter sampling")
    for section in ("rest_em", "self_rewarding"):
        match = getattr(config, section).match_tokens_of
        if match and not (Path(match) / "config.yaml").exists():
            raise ConfigError(f"--{section}.match_tokens_of {match}: not an iterate run folder (no config.yaml)")
    if config.self_rewarding.judge not in SELF_REWARDING_JUDGES:
        raise ConfigError(f"--self_rewarding.judge {config.self_rewarding.judge!r}: expected one of "
                          f"{SELF_REWARDING_JUDGES}")
    if config.method == "self_rewarding" and config.self_rewarding.judge == "verifier" and not (
            config.verifier.train_in_rounds):
        raise ConfigError("--self_rewarding.judge verifier: the judge is the verifier trained in round 0; "
                          "add --verifier.train_in_rounds true")
    if config.self_rewarding.margin < 0 or config.self_rewarding.beta <= 0:
        raise ConfigError(f"--self_rewarding.margin {config.self_rewarding.margin} and --self_rewarding.beta "
                          f"{config.self_rewarding.beta}: expected a margin of 0 or more and a positive beta")
    if config.self_rewarding.learning_rate < 0:
        raise ConfigError(f"--self_rewarding.learning_rate {config.self_rewarding.learning_rate}: expected 0 (the "
                          "policy's round rate) or a positive rate")
    if config.self_rewarding.sft_weight < 0:
        raise ConfigError(f"--self_rewarding.sft_weight {config.self_rewarding.sft_weight}: expected 0 (DPO alone) "
                          "or a positive weight of the chosen solutions' SFT term")
    if config.verifier.kind not in VERIFIER_KINDS:
        raise ConfigError(f"--verifier.kind {config.verifier.kind!r}: expected one of {VERIFIER_KINDS}")
    if config.verifier.rationales < 1 or config.verifier.max_rationale_tokens < 1:
        raise ConfigError("--verifier.rationales and --verifier.max_rationale_tokens: expected positive integers")
    if config.verifier.solution_weight < 0:
        raise ConfigError(f"--verifier.solution_weight {config.verifier.solution_weight}: expected 0 or more")
    if config.verifier.data not in VERIFIER_DATA:
        raise ConfigError(f"--verifier.data {config.verifier.data!r}: expected one of {VERIFIER_DATA}")
    if config.verifier.eval_as not in VERIFIER_EVAL_AS:
        raise ConfigError(f"--verifier.eval_as {config.verifier.eval_as!r}: expected one of {VERIFIER_EVAL_AS}")
    if config.verifier.data == "prefixes" and config.verifier.kind in ("simpo", "dpo"):
        raise ConfigError(f"--verifier.data prefixes: --verifier.kind {config.verifier.kind} trains on pairs of "
                          f"finished solutions, not on prefixes; expected genrm, genrm_cot or orm")
    for name in ("policy_train", "prm_train", "verifier_train"):
        if getattr(config, name).zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"--{name}.zero_stage: expected 0, 1, 2 or 3")
    _validate_cluster(config)


def _validate_shapes_and_sizes(config: RunConfig) -> None:
    """Cross-field checks: the embedded models' shapes, a round's problems against the pool, the W&B mode."""
    model, task = config.model, config.task
    if not model.policy_model and model.hidden_size % model.num_heads:
        raise ConfigError(f"--model.hidden_size {model.hidden_size}: expected a multiple of --model.num_heads "
                          f"({model.num_heads}), each head takes an equal share")
    if task.curriculum_start < -1 or task.curriculum_step < 1:
        raise ConfigError(f"--task.curriculum_start {task.curriculum_start} --task.curriculum_step "
                          f"{task.curriculum_step}: expected a start of -1 (the task's own), 0 (none) or more, and a "
                          f"step of 1 or more")
    searched = task.train_problems - config.eval.dev_problems
    if task.problems_per_round > searched:
        raise ConfigError(f"--task.problems_per_round {task.problems_per_round}: expected at most the "
                          f"{searched} training problems searched (--task.train_problems {task.train_problems} "
                          f"less --eval.dev_problems {config.eval.dev_problems}); a round never repeats a problem")
    experiment = config.logging.experiment
    if not experiment.strip() or Path(experiment).is_absolute() or ".." in Path(experiment).parts:
        raise ConfigError(f"--experiment {experiment!r}: expected a folder name under --run-dir (not empty, not "
                          f"absolute, no '..')")
    if not config.logging.run_dir.strip():
        raise ConfigError("--run-dir '': expected a folder")
    if not config.logging.wandb_project.strip():
        raise ConfigError("--logging.wandb_project '': expected a W&B project name")
    if config.logging.wandb_mode not in WANDB_MODES:
        raise ConfigError(f"--logging.wandb_mode {config.logging.wandb_mode!r}: expected online, offline or "
                          f"disabled (empty: WANDB_MODE, else online with a W&B login, else offline)")


def _check_data_task_values(task: TaskConfig) -> None:
    """The checks of a data task's own fields (whether the task reads them, and its files:
    `rest_mcts.preflight`)."""
    if task.ood_problems < 0:
        raise ConfigError(f"--task.ood_problems {task.ood_problems}: expected 0 or more")
    if task.answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"--task.answer_format {task.answer_format!r}: expected one of {ANSWER_FORMATS}")
    if task.chat_template not in ("auto", "off"):
        raise ConfigError(f"--task.chat_template {task.chat_template!r}: expected auto or off")
    if task.few_shot < 0:
        raise ConfigError(f"--task.few_shot {task.few_shot}: expected 0 or more")
