"""The self-training loop (`python -m rest_mcts.iterate`): round 0 warm-starts the policy and PRM,
then every round searches with MCTS*, infers process rewards, filters traces, trains both models
and evaluates them. Each stage writes its files into the round folder; `--resume` skips the stages
already recorded in `stages.json` and a round counts only once its DONE file exists.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from rest_mcts.config import (ConfigError, RunConfig, TrainConfig, add_config_arguments, apply_overrides,
                              config_from_args, load_yaml, save_yaml, to_dict, validate)
from rest_mcts.data import PolicyExample, Problem, ValueExample, atomic_write_text, read_jsonl, write_jsonl
from rest_mcts.tasks import Task, get_task

logger = logging.getLogger("rest_mcts")


@dataclass
class Round:
    """One round folder and the record of its finished stages."""

    index: int
    path: Path

    @property
    def done(self) -> bool:
        return (self.path / "DONE").exists()

    @property
    def policy(self) -> Path:
        return self.path / "policy"

    @property
    def prm(self) -> Path:
        return self.path / "prm"

    def stages(self) -> dict[str, dict[str, Any]]:
        file = self.path / "stages.json"
        return json.loads(file.read_text()) if file.exists() else {}

    def record(self, stage: str, seconds: float, metrics: dict[str, float]) -> None:
        stages = self.stages()
        stages[stage] = {"seconds": seconds, "metrics": metrics}
        atomic_write_text(self.path / "stages.json", json.dumps(stages, indent=2))


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


def train_spec(config: TrainConfig, steps: int, seed: int):
    from trainers.engine import TrainSpec

    return TrainSpec(zero_stage=config.zero_stage, micro_batch_size=config.micro_batch_size,
                     learning_rate=config.learning_rate, warmup_steps=config.warmup_steps, max_steps=steps,
                     epochs=config.epochs, bf16=config.bf16, offload_optimizer=config.offload_optimizer, seed=seed,
                     group_by_length=config.group_by_length)


class Loop:
    """The controller: owns the config, the task's problems, Ray, W&B and the run folder."""

    def __init__(self, config: RunConfig, run_dir: Path):
        validate(config)
        self.config = config
        self.run_dir = run_dir
        self.task: Task = get_task(config.task.name)
        data_seed = config.task.data_seed
        self.seed_examples = self.task.seed_examples(config.task.seed_problems, data_seed)
        pool = self.task.problems("train", config.task.train_problems, data_seed)
        dev_count = config.eval.dev_problems
        self.train_problems = pool[:len(pool) - dev_count]
        """The problems rounds search and train on."""
        self.dev_problems = pool[len(pool) - dev_count:]
        """Held out from search: each evaluation picks MCTS*'s answer margin on them."""
        self.held_out = {
            "test": self.task.problems("test", config.task.test_problems, data_seed),
            "ood": self.task.problems("ood", config.task.ood_problems, data_seed),
        }
        self._trainers = None
        self._pool = None
        self._colocation = None

    # -- Ray pieces -------------------------------------------------------------------------------

    def search_pool(self, round_index: int, policy: Path, prm: Path | None, temperature: float, purpose: str,
                    greedy_first: bool = False):
        """Search workers holding `policy` and `prm`. Colocated, the run's one pool is reused, its workers loading
        new checkpoints when they change; otherwise the workers of the last call are kept while they hold the same
        checkpoints (a round's evaluation, then the next round's search). Settings go with every request."""
        from rest_mcts.workers import SamplerSettings, SearchPool

        cluster = self.config.cluster
        settings = SamplerSettings(str(policy), str(prm) if prm else "", self.task.name, temperature,
                                   self.config.search.max_step_tokens, self.config.seed * 100 + round_index,
                                   self.config.search.decode, self.config.search.kv_store_mb, greedy_first)
        pool = self._pool
        if pool is not None and (cluster.colocate or (pool.settings.policy_path, pool.settings.prm_path) == (
                settings.policy_path, settings.prm_path)):
            pool.settings = settings
            return pool
        self.release_search_pool()
        if not cluster.colocate:
            self.release_trainers()
        self._pool = SearchPool(settings, cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                "search" if cluster.colocate else f"r{round_index:02d}-{purpose}", cluster.timeout_s,
                                self.colocation())
        return self._pool

    def colocation(self):
        """The run's placement group shared by search workers and trainer ranks (None unless cluster.colocate)."""
        from rest_mcts.placement import Colocation

        cluster = self.config.cluster
        if cluster.colocate and self._colocation is None:
            self._colocation = Colocation(cluster.search_workers, cluster.cpus_per_worker, cluster.gpus_per_worker,
                                          cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                          cluster.timeout_s, name=f"{self.config.logging.experiment}-colocation")
        return self._colocation

    def release_search_pool(self) -> None:
        """Stop the search workers so that trainer ranks get their CPUs (or GPUs)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def trainers(self, round_index: int):
        """The DeepSpeed ranks, started on first use and kept for the next training stage (colocated: for the run)."""
        from rest_mcts.train_workers import TrainerGroup

        cluster = self.config.cluster
        if not cluster.colocate:
            self.release_search_pool()
        if self._trainers is None:
            self._trainers = TrainerGroup(cluster.trainer_ranks, cluster.cpus_per_rank, cluster.gpus_per_rank,
                                          "trainer" if cluster.colocate else f"r{round_index:02d}-train",
                                          cluster.timeout_s, cluster.cpu_shm_comm, self.colocation())
        return self._trainers

    def release_trainers(self) -> None:
        """Stop the trainer ranks so that search workers get their CPUs (or GPUs)."""
        if self._trainers is not None:
            self._trainers.shutdown()
            self._trainers = None

    def release_actors(self) -> None:
        """Stop every actor of the run and free its placement group."""
        self.release_search_pool()
        self.release_trainers()
        if self._colocation is not None:
            self._colocation.remove()
            self._colocation = None

    def mcts_params(self, solving: bool):
        from search.mcts import MCTSParams

        search = self.config.search
        return MCTSParams(
            branch=search.branch, exploration_constant=search.exploration_constant,
            unvisited_bonus=search.unvisited_bonus, roll_forward_steps=search.roll_forward_steps,
            rollout_alpha=search.rollout_alpha, end_gate=search.end_gate, stop_at_end_gate=solving,
            max_depth=search.max_depth,
            max_simulations=self.config.eval.simulations if solving else search.simulations,
            max_tokens=search.max_tokens, first_path_first=solving and self.config.eval.complete_first_path,
        )

    # -- stages -----------------------------------------------------------------------------------

    def round_problems(self, round_index: int) -> list[Problem]:
        """A new slice of the training pool each round (wrapping around)."""
        count = self.config.task.problems_per_round
        start = (round_index * count) % len(self.train_problems)
        return [self.train_problems[(start + i) % len(self.train_problems)] for i in range(count)]

    def initial_policy(self, round_: Round) -> dict[str, float]:
        """The embedded tiny policy (or the user's checkpoint), saved as round 0's starting point."""
        from rest_mcts.models.build import build_tiny_policy, load_policy, load_tokenizer
        from rest_mcts.models.tokenizer import build_char_tokenizer

        model = self.config.model
        if model.policy_model:
            tokenizer, policy = load_tokenizer(model.policy_model), load_policy(model.policy_model)
        else:
            tokenizer = build_char_tokenizer()
            policy = build_tiny_policy(tokenizer, model.hidden_size, model.num_layers, model.num_heads,
                                       model.intermediate_size, model.max_positions, seed=self.config.seed)
        save_checkpoint(policy, tokenizer, round_.path / "init_policy")
        return {"model/policy_parameters": float(sum(p.numel() for p in policy.parameters()))}

    def initial_prm(self, round_: Round) -> dict[str, float]:
        """The user's PRM checkpoint, else a PRM whose body is the warm-started policy's."""
        from rest_mcts.models.build import load_prm, load_tokenizer, prm_from_policy

        if self.config.model.prm_model:
            prm, tokenizer = load_prm(self.config.model.prm_model), load_tokenizer(self.config.model.prm_model)
        else:
            prm, tokenizer = prm_from_policy(round_.policy, seed=self.config.seed + 1), load_tokenizer(round_.policy)
        save_checkpoint(prm, tokenizer, round_.path / "init_prm")
        return {"model/prm_parameters": float(sum(p.numel() for p in prm.parameters()))}

    def search(self, round_: Round, policy: Path, prm: Path | None) -> dict[str, float]:
        """MCTS* at full budget on this round's training problems; trees appended to trees.jsonl."""
        from rest_mcts.workers import search_to_file

        problems = self.round_problems(round_.index)
        pool = self.search_pool(round_.index, policy, prm, self.config.search.temperature, "search")
        started = time.time()
        trees = search_to_file(pool, problems, self.mcts_params(solving=False), round_.path / "trees.jsonl",
                               self.config.cluster.problems_per_task, f"round {round_.index} search")
        seconds = time.time() - started
        tokens = sum(tree.tokens_used for tree in trees)
        solved = [any(node.answer_correct for node in tree.nodes if node.is_terminal) for tree in trees]
        return {"search/tokens": float(tokens), "search/solved_rate": sum(solved) / len(trees),
                "search/nodes": float(sum(len(tree.nodes) for tree in trees)),
                "perf/tokens_per_s": tokens / max(seconds, 1e-9)}

    def infer_values(self, round_: Round) -> dict[str, float]:
        """Process rewards from each tree and the oracle (value_examples.jsonl) and the verified traces
        (policy_examples.jsonl)."""
        from rest_mcts.evaluation import auroc
        from rest_mcts.workers import read_finished_trees
        from search.filtering import correct_traces
        from search.tree import Tree
        from search.value_inference import infer_process_rewards, value_targets

        problems = {problem.id: problem for problem in self.train_problems}
        position = {problem_id: index for index, problem_id in enumerate(problems)}
        value_examples, policy_examples = [], []
        traces_all_steps_right = 0
        # Shards append their trees as they finish, in an order that changes from run to run; reading them
        # in problem order makes the examples (both models' training data) independent of that order.
        records = sorted(read_finished_trees(round_.path / "trees.jsonl"), key=lambda r: position[r["problem_id"]])
        for record in records:
            tree = Tree.from_dict(record)
            problem = problems[tree.problem_id]
            is_correct = lambda steps, p=problem: self.task.is_correct(p, steps)  # noqa: E731
            rewards = infer_process_rewards(tree, is_correct)
            prompt = self.task.format_prompt(problem)
            for steps, quality_value in value_targets(tree, rewards, self.config.search.value_target):
                label = self.task.step_labels(problem, steps)[-1] if self.task.synthetic else None
                value_examples.append(ValueExample(problem.id, prompt, steps, quality_value, label))
            for steps in correct_traces(tree, is_correct, self.config.search.max_traces_per_problem):
                sound = self.task.synthetic and all(self.task.step_labels(problem, steps))
                if self.config.search.oracle_step_filter and not sound:
                    continue
                policy_examples.append(PolicyExample(problem.id, prompt, steps))
                traces_all_steps_right += sound
        write_jsonl(round_.path / "value_examples.jsonl", value_examples)
        write_jsonl(round_.path / "policy_examples.jsonl", policy_examples)
        metrics = {"examples/value": float(len(value_examples)), "examples/policy": float(len(policy_examples))}
        if policy_examples and self.task.synthetic:
            metrics["filter/sound_trace_rate"] = traces_all_steps_right / len(policy_examples)
        labelled = [example for example in value_examples if example.step_correct is not None]
        value_auroc = auroc([e.quality_value for e in labelled], [bool(e.step_correct) for e in labelled])
        if value_auroc is not None:
            metrics["value/auroc"] = value_auroc
        return metrics

    def policy_training_data(self, round_index: int) -> list[PolicyExample]:
        """Every verified trace found so far plus seed solutions replayed beside them
        (`search.seed_replay_ratio` per trace; all of them while no trace is found yet); the
        control run: seed solutions only."""
        if self.config.control:
            return list(self.seed_examples)
        traces = [example for index in range(1, round_index + 1)
                  for example in read_jsonl(self.round_path(index) / "policy_examples.jsonl", PolicyExample)]
        ratio = self.config.search.seed_replay_ratio
        if not traces or ratio < 0 or ratio * len(traces) >= len(self.seed_examples):
            return list(self.seed_examples) + traces
        replayed = random.Random(self.config.seed * 1000 + round_index).sample(
            self.seed_examples, int(round(ratio * len(traces))))
        return replayed + traces

    def train_policy(self, round_: Round, start: Path, examples: list[PolicyExample], steps: int) -> dict[str, float]:
        spec = train_spec(self.config.policy_train, steps, self.config.seed + round_.index)
        result = self.trainers(round_.index).train_policy(str(start), examples, spec, str(round_.policy),
                                                          f"round {round_.index} train_policy")
        return {"policy/loss": result.last_loss, "policy/first_loss": result.first_loss,
                "policy/steps": float(result.steps), "policy/tokens_per_s": result.tokens_per_s,
                "policy/examples": float(len(examples))}

    def train_prm(self, round_: Round, start: Path, examples: list[ValueExample], steps: int) -> dict[str, float]:
        if not examples:
            logger.warning("round %d: no value examples (no tree found a correct answer); PRM kept", round_.index)
            _copy_checkpoint(start, round_.prm)
            return {"prm/examples": 0.0}
        spec = train_spec(self.config.prm_train, steps, self.config.seed + round_.index)
        result = self.trainers(round_.index).train_prm(str(start), examples, spec, str(round_.prm),
                                                       f"round {round_.index} train_prm")
        return {"prm/loss": result.last_loss, "prm/first_loss": result.first_loss,
                "prm/steps": float(result.steps), "prm/examples": float(len(examples))}

    def evaluate(self, round_: Round) -> dict[str, float]:
        """Greedy and MCTS* (fixed budget, solving) on the test and OOD splits with this round's models.

        With dev problems, MCTS* runs on them first and its answer margin is the one that answered them best
        (`pick_answer_margin`); the test and OOD answers then use that margin.
        """
        from rest_mcts.evaluation import greedy_metrics, mcts_metrics, pick_answer_margin
        from rest_mcts.workers import greedy_results, search_to_file

        metrics: dict[str, float] = {}
        pool = self.search_pool(round_.index, round_.policy, round_.prm, self.config.eval.temperature, "eval",
                                self.config.eval.greedy_first)
        per_task = self.config.cluster.problems_per_task
        solving = self.mcts_params(solving=True)
        margin = self.config.eval.answer_margin
        if self.dev_problems:
            trees = search_to_file(pool, self.dev_problems, solving, round_.path / "eval_dev_trees.jsonl",
                                   per_task, f"round {round_.index} dev MCTS*")
            choice = pick_answer_margin(self.task, self.dev_problems, trees)
            margin = choice.margin
            metrics["dev/mcts/answer_margin"] = margin
            metrics["dev/mcts/accuracy"] = choice.accuracy[margin]
            metrics["dev/mcts/accuracy_prm_choice"] = choice.accuracy[min(choice.accuracy)]
            metrics["dev/mcts/accuracy_first_path"] = choice.accuracy[max(choice.accuracy)]
            logger.info("round %d: answer margin %g (dev accuracy, sign-test p against the first path: %s)",
                        round_.index, margin, ", ".join(
                            f"{m:g}: {a:.3f}" + (f" p={choice.p_value[m]:.2f}" if m in choice.p_value else "")
                            for m, a in choice.accuracy.items()))
        for split, problems in self.held_out.items():
            greedy = greedy_results(pool, problems, self.config.search.max_depth, per_task,
                                    f"round {round_.index} {split} greedy")
            write_jsonl(round_.path / f"eval_{split}_greedy.jsonl", greedy)
            metrics.update(greedy_metrics(greedy, split))
            trees = search_to_file(pool, problems, solving, round_.path / f"eval_{split}_trees.jsonl", per_task,
                                   f"round {round_.index} {split} MCTS*")
            metrics.update(mcts_metrics(self.task, problems, trees, split, margin))
        return metrics

    # -- rounds -----------------------------------------------------------------------------------

    def round_path(self, index: int) -> Path:
        return self.run_dir / f"round_{index:02d}"

    def warm_start(self, round_: Round) -> None:
        """Round 0: SFT on the seed solutions, then a PRM trained on values inferred from trees searched
        with no PRM (every step scored 0.5, so UCT explores by visit counts alone)."""
        train = self.config.policy_train
        prm_train = self.config.prm_train
        run_stage(round_, "init_policy", lambda: self.initial_policy(round_))
        run_stage(round_, "train_policy", lambda: self.train_policy(
            round_, round_.path / "init_policy", self.seed_examples, train.warm_start_steps))
        run_stage(round_, "init_prm", lambda: self.initial_prm(round_))
        run_stage(round_, "search", lambda: self.search(round_, round_.policy, None))
        run_stage(round_, "infer_values", lambda: self.infer_values(round_))
        run_stage(round_, "train_prm", lambda: self.train_prm(
            round_, round_.path / "init_prm", list(read_jsonl(round_.path / "value_examples.jsonl", ValueExample)),
            prm_train.warm_start_steps))

    def self_train(self, round_: Round) -> None:
        """Rounds >= 1: search with the last round's models, infer values, train both models."""
        previous = Round(round_.index - 1, self.round_path(round_.index - 1))
        run_stage(round_, "search", lambda: self.search(round_, previous.policy, previous.prm))
        run_stage(round_, "infer_values", lambda: self.infer_values(round_))
        run_stage(round_, "train_policy", lambda: self.train_policy(
            round_, previous.policy, self.policy_training_data(round_.index),
            self.config.policy_train.steps_per_round))
        run_stage(round_, "train_prm", lambda: self.train_prm(
            round_, previous.prm, list(read_jsonl(round_.path / "value_examples.jsonl", ValueExample)),
            self.config.prm_train.steps_per_round))

    def run(self, tracker) -> list[dict[str, Any]]:
        rows = []
        for index in range(self.config.rounds + 1):
            round_ = Round(index, self.round_path(index))
            round_.path.mkdir(parents=True, exist_ok=True)
            if not round_.done:
                (self.warm_start if index == 0 else self.self_train)(round_)
                run_stage(round_, "evaluate", lambda: self.evaluate(round_))
                summary = round_summary(round_)
                atomic_write_text(round_.path / "eval.json", json.dumps(summary, indent=2, sort_keys=True))
                atomic_write_text(round_.path / "DONE", time.strftime("%Y-%m-%dT%H:%M:%S\n"))
            summary = json.loads((round_.path / "eval.json").read_text())
            tracker.log(index, summary)
            rows.append({"round": index, **summary})
            logger.info("round %d finished: test greedy %.3f, test MCTS* %.3f", index,
                        summary.get("test/greedy/accuracy", float("nan")), summary.get("test/mcts/accuracy", float("nan")))
        return rows


def round_summary(round_: Round) -> dict[str, float]:
    """Every stage's metrics and seconds (`timing_s/<stage>`), flattened."""
    summary: dict[str, float] = {}
    for stage, record in round_.stages().items():
        summary.update(record["metrics"])
        summary[f"timing_s/{stage}"] = record["seconds"]
    return summary


def write_folder(target: Path, fill: Callable[[Path], None]) -> None:
    """`fill(path)` creates a folder at a temporary path beside `target`, which then replaces `target`."""
    import shutil
    import tempfile

    from trainers.engine import replace_dir

    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        fill(staging / target.name)
        replace_dir(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_checkpoint(model, tokenizer, target: Path) -> None:
    """save_pretrained (model and tokenizer) into `target`, atomically."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    def fill(path: Path) -> None:
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)

    write_folder(target, fill)


def _copy_checkpoint(source: Path, target: Path) -> None:
    import shutil

    write_folder(target, lambda path: shutil.copytree(source, path))


# -- command line -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rest_mcts.iterate",
        description="ReST-MCTS* self-training: MCTS* search with a PRM, process-reward inference, "
                    "policy and PRM training, round after round. With no flags: the embedded tiny default.",
    )
    parser.add_argument("--resume", action="store_true",
                        help="Continue the run in the experiment folder at its first unfinished stage "
                             "(its saved config.yaml is used; --rounds may extend it).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Delete an existing experiment folder of the same name and start again.")
    add_config_arguments(parser)
    return parser


def check_model_paths(config: RunConfig) -> None:
    """Fail before anything is written if a given model path is not a usable checkpoint."""
    from rest_mcts.models.build import load_policy, load_prm

    if config.model.policy_model:
        load_policy(config.model.policy_model)
    if config.model.prm_model:
        load_prm(config.model.prm_model)


def prepare_run_dir(config: RunConfig, args: argparse.Namespace) -> tuple[RunConfig, Path]:
    run_dir = Path(config.logging.run_dir) / config.logging.experiment
    saved = run_dir / "config.yaml"
    if args.resume:
        if not saved.exists():
            raise ConfigError(f"--resume: no run to resume at {run_dir} (no config.yaml)")
        resumed = apply_overrides(RunConfig(), load_yaml(str(saved)), str(saved))
        if args.rounds is not None:
            resumed = replace(resumed, rounds=config.rounds)
        validate(resumed)
        return resumed, run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not args.overwrite:
            raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it, --overwrite to "
                              f"start again, or --experiment NAME for a new one")
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, save_yaml(config))
    return config, run_dir


def start_ray(address: str, dashboard_host: str) -> None:
    """Join the Ray cluster at `address`, or start a local one with its dashboard on `dashboard_host`."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        context = ray.init(address=address, log_to_driver=False)
    else:
        context = ray.init(include_dashboard=True, dashboard_host=dashboard_host,
                           log_to_driver=False, logging_level=logging.WARNING)
    url = getattr(context, "dashboard_url", None)
    if url:
        # Ray 2.x guards its dashboard with a token it writes to ~/.ray/auth_token on first start.
        token = Path.home() / ".ray" / "auth_token"
        login = f" (log in with the token in {token})" if token.exists() else ""
        print(f"Ray dashboard: http://{url}{login}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from rest_mcts.tracking import console_logging

    console_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        check_model_paths(config)
        config, run_dir = prepare_run_dir(config, args)
    except (ConfigError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    loop = Loop(config, run_dir)
    start_ray(config.cluster.ray_address, config.cluster.dashboard_host)
    from rest_mcts.tracking import Tracker, format_table

    tracker = Tracker(config.logging.wandb_project, config.logging.experiment, config.logging.wandb_mode,
                      str(run_dir), to_dict(config), name=f"{config.logging.experiment}-seed{config.seed}")
    try:
        started = time.time()
        try:
            rows = loop.run(tracker)
        finally:
            loop.release_actors()
        print("\n" + format_table(rows), flush=True)
        print(f"\nrun folder: {run_dir}   total {time.time() - started:.0f} s", flush=True)
    finally:
        tracker.finish()
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
