"""The self-training loop (`python -m rest_mcts.iterate`): round 0 warm-starts the policy and PRM, then every
round runs its method's list of stages (`stages.stages_of`: for ReST-MCTS*, search with MCTS*, infer process
rewards, filter traces, train both models, with `verifier.train_in_rounds` train the verifier, evaluate). Each
stage writes its files into the round folder; `--resume` skips the stages already recorded in `stages.json` and a
round counts only once its DONE file exists.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from lm.data import atomic_write_text
from rest_mcts.config import ConfigError, RunConfig
from rest_mcts.flags import add_config_arguments, config_from_args, read_saved_config, save_yaml, to_dict
from rest_mcts.plan import placement_plan
from rest_mcts.preflight import (
    check_backend,
    check_local_resources,
    check_run_folder,
    check_task_data,
    check_wandb,
    disk_full,
    outermost_new_folder,
    quiet_checks,
    quiet_loading,
    run_folder,
    validate,
)
from rest_mcts.problems import split_sizes_line
from rest_mcts.rounds import Round, run_stage
from rest_mcts.tasks import TASKS
from rest_mcts.tracking import (
    Tracker,
    console_logging,
    format_table,
    length_columns,
    plot_length_accuracy,
    redact,
    wandb_identity,
)
from rest_mcts.tree_pages import sample_pages

logger = logging.getLogger("rest_mcts")


def run_rounds(config: RunConfig, run_dir: Path, tracker) -> list[dict[str, Any]]:
    """Every round not yet DONE, stage by stage; each round's summary goes to `tracker`. The table rows."""
    from rest_mcts.stages import Context, stages_of

    context = Context.of(config, run_dir)
    rows = []
    try:
        for index in range(config.rounds + 1):
            round_ = Round.of(run_dir, index)
            round_.path.mkdir(parents=True, exist_ok=True)
            if not round_.done:
                for name, body in stages_of(config, index):
                    run_stage(round_, name, lambda body=body, round_=round_: body(context, round_))
                round_.finish()
            summary = round_.read_summary()
            tracker.log(index, summary)
            tracker.log_pages(index, sample_pages(
                context.task, context.problems.held_out.get("test", []), round_.path / "eval_test_trees.jsonl",
                summary.get("dev/mcts/answer_margin", config.eval.answer_margin), config.logging.wandb_trees,
                f"{config.logging.experiment} round {index}"))
            rows.append({"round": index, **summary})
            logger.info("round %d finished: test greedy %.3f, test MCTS* %.3f", index,
                        summary.get("test/greedy/accuracy", float("nan")),
                        summary.get("test/mcts/accuracy", float("nan")))
    finally:
        context.actors.release()
    return rows


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
    parser.add_argument("--dry-run", action="store_true",
                        help="Validate the configuration as a run would, print it and its Ray placement plan "
                             "(rest_mcts.plan), and exit: no run folder, no Ray, no model loaded; model paths and "
                             "task data are not checked.")
    add_config_arguments(parser)
    return parser


def check_model_paths(config: RunConfig) -> None:
    """Fail before anything is written if a given model path is not a usable checkpoint."""
    from lm.build import load_policy, load_prm

    def load_config(path):  # a verifier's kind decides its class; any checkpoint has a loadable config
        from transformers import AutoConfig

        if not (Path(path) / "config.json").is_file():
            raise ValueError(f"{path}: not a directory with a config.json; expected a checkpoint saved with "
                             f"save_pretrained")
        AutoConfig.from_pretrained(path)

    for flag, path, load in (("--model.policy_model", config.model.policy_model, load_policy),
                             ("--model.prm_model", config.model.prm_model, load_prm),
                             ("--verifier.model", config.verifier.model, load_config)):
        if path:
            try:
                load(path)
            except Exception as error:  # ModelPathError, or whatever transformers or safetensors say of the files
                what = "" if isinstance(error, (ValueError, OSError)) else f"{type(error).__name__}: "
                first_line = (str(error).strip().splitlines() or ["no message"])[0]
                raise ConfigError(f"{flag} {path}: not a loadable checkpoint ({what}{first_line})") from None


def check_start(config: RunConfig, resume: bool) -> None:
    """The checks of the world a run starts in, in order (docs/bad-inputs.md): this machine's resources for a local
    Ray cluster, the backend, the W&B login, the run folder and its disk, the model paths, the task's data, the Ray
    address. Models and tokenizers load quietly (`preflight.quiet_loading`)."""
    from rest_mcts.placement import check_ray_address

    check_local_resources(config)
    check_backend(config)
    check_wandb(config)
    check_run_folder(config, resume)
    with quiet_loading():
        check_model_paths(config)
        check_task_data(config)
    check_ray_address(config.cluster.ray_address)


def resumed_config(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    """The saved configuration of the run --resume continues (--rounds may extend it), validated. The run goes on
    in the folder it was found in: a run folder moved or copied elsewhere keeps its old `logging.run_dir`."""
    saved = Path(config.logging.run_dir) / config.logging.experiment / "config.yaml"
    if not saved.exists():
        raise ConfigError(f"--resume: no run to resume at {saved.parent} (no config.yaml)")
    resumed = read_saved_config(saved)
    resumed = replace(resumed, logging=replace(resumed.logging, run_dir=config.logging.run_dir,
                                               experiment=config.logging.experiment))
    if args.rounds is not None:
        resumed = replace(resumed, rounds=config.rounds)
    validate(resumed)
    return resumed


def prepare_run_dir(config: RunConfig, args: argparse.Namespace) -> tuple[RunConfig, Path]:
    run_dir = Path(config.logging.run_dir) / config.logging.experiment
    saved = run_dir / "config.yaml"
    if args.resume:  # `config` is the saved one (`resumed_config`)
        return config, run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not args.overwrite:
            raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it, --overwrite to "
                              f"start again, or --experiment NAME for a new one")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, save_yaml(config))
    return config, run_dir


def dry_run_report(config: RunConfig) -> str:
    """What --dry-run prints: the resolved configuration and its placement plan (`rest_mcts.plan.placement_plan`),
    two YAML documents, the plan ending with what a run checks first and a dry run does not."""
    plan = placement_plan(config)
    paths = [path for path in (config.model.policy_model, config.model.prm_model, config.verifier.model) if path]
    plan["not_checked"] = [
        f"model paths, which a run loads before it starts: {', '.join(paths) or 'none given (embedded models)'}",
        "task data, which a run reads before it starts (every split it draws)",
        "the cluster itself: Ray was not started or joined",
        *(["the vllm backend: whether vLLM is installed here"] if config.search.backend == "vllm" else []),
    ]
    return ("# Resolved configuration (python -m rest_mcts.iterate --dry-run)\n" + save_yaml(config)
            + "---\n# Placement plan: nothing was started, loaded or written\n"
            + yaml.dump(plan, Dumper=_PlanDumper, sort_keys=False, width=120))


class _PlanDumper(yaml.SafeDumper):
    """YAML with short collections of scalars on one line ({CPU: 8, GPU: 1}, [0.9, 0.999]), the rest in blocks."""

    def represent_mapping(self, tag, mapping, flow_style=None):
        return super().represent_mapping(tag, mapping, flow_style=_short(list(mapping.values()), mapping))

    def represent_sequence(self, tag, sequence, flow_style=None):
        return super().represent_sequence(tag, sequence, flow_style=_short(sequence, sequence))


def _short(values: list, collection) -> bool:
    return all(not isinstance(value, (dict, list, tuple)) for value in values) and len(str(collection)) <= 60


def remove_new_folder(folder: Path | None) -> None:
    """Undo what a start that failed made (`preflight.outermost_new_folder`); None: nothing to undo."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    console_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.exit(2, "error: --resume and --overwrite: choose one (continue the run, or delete it and start again)\n")
    new_folder = None
    try:
        with quiet_checks():
            config = config_from_args(args)
            if args.resume:
                config = resumed_config(config, args)
            if args.dry_run:
                print(dry_run_report(config), end="", flush=True)
                return 0
            check_start(config, args.resume)
        # what a start that fails removes: the folders this run makes (--overwrite: the run folder it remakes)
        new_folder = None if args.resume else outermost_new_folder(run_folder(config)) or run_folder(config)
        config, run_dir = prepare_run_dir(config, args)
    except (ConfigError, ValueError) as error:
        parser.exit(2, f"error: {redact(str(error))}\n")
    except OSError as error:  # e.g. the run folder vanished or turned read-only since it was checked
        remove_new_folder(new_folder)
        parser.exit(2, f"error: {error.filename or 'the run folder'}: {error.strerror or error}\n")
    from rest_mcts.placement import start_ray

    if not TASKS[config.task.name].synthetic:  # sizes a data task may have taken from its files
        logger.info(split_sizes_line(config))
    for warning in placement_plan(config)["warnings"]:
        logger.warning(warning)
    tracker = None
    try:
        identity = wandb_identity(config)
        tracker = Tracker(config.logging.wandb_project, identity["group"], config.logging.wandb_mode, str(run_dir),
                          to_dict(config), name=identity["name"], init_timeout_s=config.logging.wandb_init_timeout_s,
                          job_type=identity["job_type"], tags=identity["tags"])
        start_ray(config.cluster.ray_address, config.cluster.dashboard_host, config.cluster.nodes)
    except Exception as error:  # W&B or Ray did not start: nothing ran, so a new run leaves no folder
        if tracker is not None:
            tracker.finish()
        remove_new_folder(new_folder)
        parser.exit(2, f"error: {redact(str(error)) or type(error).__name__}\n")
    try:
        started = time.time()
        rows = run_rounds(config, run_dir, tracker)
        print("\n" + format_table(rows), flush=True)
        by_length = length_columns(rows)
        if by_length:
            print("\naccuracy per problem length (steps)\n" + format_table(rows, [("round", "round", "{:d}"),
                                                                                   *by_length]), flush=True)
            plot_length_accuracy(rows, run_dir / "accuracy_by_length.png")
        print(f"\nrun folder: {run_dir}   total {time.time() - started:.0f} s", flush=True)
    except Exception as error:
        if not disk_full(error):
            raise
        where = getattr(error, "filename", None) or "a run file"
        reason = getattr(error, "strerror", None) or "no space left on device"
        parser.exit(1, f"error: no room left writing {where} ({reason}); the finished stages are kept: free space, "
                       f"then continue with --resume\n")
    finally:
        tracker.finish()
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
