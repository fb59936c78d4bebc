"""The checks a run makes once at its start, before it writes anything: `validate` (the configuration's own values,
`rest_mcts.config.check_values`, then what they mean for the task and the placement plan), `check_task_data` (the
task's files and splits, read once), and the world outside: a local Ray cluster fits this machine, an online W&B
run has credentials, the run folder can be made and written and its disk holds what the run will write."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lm.encoding import encode_prompt, encode_steps
from rest_mcts.config import DATA_TASK_FIELDS, ConfigError, RunConfig, TaskConfig, check_values
from rest_mcts.plan import SEARCH_WORKER, TRAINER_RANK, group_flags, group_of, placement_plan
from rest_mcts.problems import RunProblems
from rest_mcts.tasks import TASKS, DataTask, Task, load_task
from rest_mcts.tracking import resolve_wandb_mode, wandb_credentials

DATA_MARGIN_BYTES = 64 * 2**20
"""Room for what a run writes besides checkpoints (trees, examples, logs, W&B files), on the small defaults."""

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""Write errors that mean no room is left: a full disk, a spent quota, a file-size limit."""


@contextmanager
def quiet_checks() -> Iterator[None]:
    """Python warnings ignored while the start's checks run, so that a refusal prints its one error line alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' logging below errors and its progress bars off while the checks load models and tokenizers (a
    refusal is one line), restored after, so that a run's own loading logs as before."""
    from transformers.utils import logging as transformers_logging

    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def validate(config: RunConfig) -> None:
    """Reject a configuration no run can use, naming the flag: its own values (`config.check_values`), the task
    and what it reads, the verifier trained in the rounds against the task, and the placement plan (whether the
    actors fit the nodes), so that a run that cannot be placed fails before anything is written."""
    check_values(config)
    if config.task.name not in TASKS:
        raise ConfigError(f"--task {config.task.name!r}: unknown task; expected one of {sorted(TASKS)}")
    _validate_data_task(config)
    if config.traces.oracle_step_filter and not TASKS[config.task.name].synthetic:
        raise ConfigError("--traces.oracle_step_filter: needs a synthetic task (true step labels)")
    _validate_round_verifier(config)
    placement_plan(config)


def check_backend(config: RunConfig) -> None:
    """With the vllm backend: vLLM installed on this machine, and the policy's head size one its attention takes
    (on CPU; the embedded models' from --model.*, a checkpoint's from its config.json). A check of the machine,
    which a dry run leaves out."""
    if config.search.backend != "vllm":
        return
    from lm.vllm_engine import EngineError, check_servable, import_vllm

    try:
        import_vllm()
        if not config.cluster.gpus_per_worker:
            path = config.model.policy_model
            size = config.model.hidden_size // config.model.num_heads if not path else None
            check_servable(path or "the embedded policy", "cpu", size)
    except EngineError as error:
        raise ConfigError(f"--search.backend vllm: {error}") from None


def _validate_data_task(config: RunConfig) -> None:
    """A built-in task given the fields only data tasks read, or a data task without what it needs (its files
    themselves are read by `check_task_data`)."""
    task = config.task
    if not issubclass(TASKS[task.name], DataTask):
        defaults = TaskConfig()
        given = [f"--task.{name}" for name in DATA_TASK_FIELDS if getattr(task, name) != getattr(defaults, name)]
        if given:
            data_tasks = sorted(name for name, cls in TASKS.items() if issubclass(cls, DataTask))
            raise ConfigError(f"{', '.join(given)}: --task {task.name} is built in and reads none of these (the data "
                              f"tasks do: {', '.join(data_tasks)})")
        return
    if not config.model.policy_model:
        raise ConfigError(f"--task {task.name}: a data task needs a real tokenizer; give --model.policy_model PATH "
                          f"(a local Hugging Face checkpoint; the embedded tiny models read only the synthetic tasks)")
    if task.name == "jsonl" and not task.data_path:
        raise ConfigError("--task jsonl: needs --task.data_path FILE (one JSON object per line)")


def _validate_round_verifier(config: RunConfig) -> None:
    """The verifier trained in the rounds against the task: prefixes need true step labels, genrm_cot the task's
    written checks."""
    verifier, task = config.verifier, TASKS[config.task.name]
    if verifier.data == "prefixes" and not task.synthetic:
        raise ConfigError(f"--verifier.data prefixes: needs a synthetic task (true step labels); --task "
                          f"{config.task.name} has none")
    # Checked only when the rounds train it: genrm_cot is the default kind, and runs that never train a verifier
    # must not be refused on a task without written checks.
    if verifier.train_in_rounds and verifier.kind == "genrm_cot" and (
            task.verification_rationale is Task.verification_rationale):
        raise ConfigError(f"--verifier.kind genrm_cot: learns the task's written checks, and --task "
                          f"{config.task.name} has none (Task.verification_rationale); use --verifier.kind genrm")


def check_task_data(config: RunConfig) -> None:
    """Read every data file the run's task uses and draw every split it needs, so that a bad file or a split
    larger than its data fails before any file is written (DataError names the file and line)."""
    task = load_task(config.task, config.model.policy_model or None)
    problems = RunProblems.of(config, task)
    if not problems.seed_examples and config.policy_train.warm_start_steps > 0:
        raise ConfigError(f"--policy_train.warm_start_steps {config.policy_train.warm_start_steps}: --task "
                          f"{config.task.name} has no worked solutions to warm-start on; set --task.solution_field "
                          f"or --policy_train.warm_start_steps 0")
    for round_index in range(config.rounds + 1):
        limit = problems.max_difficulty(round_index)
        if limit is not None and not problems.eligible(round_index):
            raise ConfigError(f"--task.curriculum_start {config.task.curriculum_start}: round {round_index} may search "
                              f"problems of at most {limit} steps and the training pool holds none; expected a "
                              f"larger start (or 0: no schedule)")
    if problems.train:
        task.format_prompt(problems.train[0])  # renders a prompt (chat template, few-shot) once
    from lm.build import load_tokenizer  # transformers: loaded only when a run checks its data
    from lm.tokenizer import build_char_tokenizer

    # A data task loaded the policy's tokenizer already (its chat template); a synthetic task did not.
    tokenizer = getattr(task, "tokenizer", None) or (
        load_tokenizer(config.model.policy_model) if config.model.policy_model else build_char_tokenizer())
    _check_positions(config, task, problems, tokenizer)
    if config.model.policy_model:
        ids = tokenizer(task.step_delimiter, add_special_tokens=False)["input_ids"]
        written = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if written != task.step_delimiter:
            raise ConfigError(f"the step delimiter {task.step_delimiter!r} of --task {config.task.name}: the tokenizer "
                              f"of --model.policy_model {config.model.policy_model} cannot write it (it reads back "
                              f"as {written!r}), so no step could ever end; use a tokenizer that encodes it (data "
                              f"tasks: or another --task.step_delimiter)")


def _check_positions(config: RunConfig, task, problems, tokenizer) -> None:
    """The policy's positions hold the longest prompt of every split plus one step, and the longest worked
    solution of the warm start (a model with learned positions fails past its last one)."""
    if config.model.policy_model:
        from transformers import AutoConfig

        positions = getattr(AutoConfig.from_pretrained(config.model.policy_model), "max_position_embeddings", None)
        where = f"--model.policy_model {config.model.policy_model}: max_position_embeddings {positions}"
    else:
        positions, where = config.model.max_positions, f"--model.max_positions {config.model.max_positions}"
    if not positions:
        return
    split_problems = [*problems.train, *problems.dev, *(p for split in problems.held_out.values() for p in split)]
    if split_problems:
        length, problem = max((len(encode_prompt(tokenizer, task.format_prompt(p))), p.id) for p in split_problems)
        if length + config.search.max_step_tokens > positions:
            raise ConfigError(f"{where}: the longest prompt (problem {problem}, {length} tokens) and one step of "
                              f"--search.max_step_tokens {config.search.max_step_tokens} do not fit")
    if problems.seed_examples and config.policy_train.warm_start_steps > 0:
        length, problem = max((len(encode_steps(tokenizer, e.prompt, e.steps, add_eos=True).input_ids),
                               e.problem_id) for e in problems.seed_examples)
        if length > positions:
            raise ConfigError(f"{where}: the longest worked solution of the warm start (problem {problem}, prompt "
                              f"and steps {length} tokens) does not fit")


def disk_full(error: BaseException) -> bool:
    """Whether `error` says a write found no room: an OSError of `DISK_FULL_ERRNOS`, or a library's own error (a
    checkpoint's SafetensorError, a trainer rank's error as Ray passes it on) whose message is the system's."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    return any(os.strerror(number) in str(error) for number in DISK_FULL_ERRNOS)


def run_folder(config: RunConfig) -> Path:
    return Path(config.logging.run_dir) / config.logging.experiment


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def outermost_new_folder(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (what making `folder` creates, and what
    removing undoes), or None when `folder` exists."""
    folder = folder.absolute()
    if folder.exists():
        return None
    while not folder.parent.exists():
        folder = folder.parent
    return folder


def check_run_folder(config: RunConfig, resume: bool) -> None:
    """The run folder is (or can be made) a writable folder on a disk with room for the run (`run_bytes`)."""
    folder = run_folder(config)
    existing = nearest_existing(folder)
    flag = f"--run-dir {config.logging.run_dir} --experiment {config.logging.experiment}"
    if not existing.is_dir():
        raise ConfigError(f"{flag}: {existing} is a file, not a folder; choose another --run-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}: cannot write the run folder {folder}: {existing} is not writable by this user "
                          f"(uid {os.getuid()}); choose a --run-dir you can write")
    need = run_bytes(config)
    if resume and folder.is_dir():  # what the finished rounds wrote is on the disk already
        need = max(0, need - sum(file.stat().st_size for file in folder.rglob("*") if file.is_file()))
    free = shutil.disk_usage(existing).free
    if free < need:
        raise ConfigError(f"{flag}: {free / 2**20:.0f} MiB free on the disk of {existing}, and the run writes about "
                          f"{need / 2**20:.0f} MiB (every round keeps its policy and PRM checkpoints); free space, "
                          f"choose another --run-dir or fewer --rounds")


def run_bytes(config: RunConfig) -> int:
    """About what a run writes: its checkpoints (round 0: the initial policy and PRM too; with a verifier trained
    in the rounds, one more per round) plus `DATA_MARGIN_BYTES`."""
    per_round = 2 + int(config.verifier.train_in_rounds)
    checkpoints = (config.rounds + 1) * per_round + 2
    policy = checkpoint_bytes(config.model.policy_model, config)
    prm = checkpoint_bytes(config.model.prm_model, config) if config.model.prm_model else policy
    return int(checkpoints * max(policy, prm)) + DATA_MARGIN_BYTES


def checkpoint_bytes(path: str, config: RunConfig) -> int:
    """The size of a checkpoint of the model at `path` (its weight files), or of the embedded policy in float32."""
    if path:
        folder = Path(path)
        return sum(file.stat().st_size for pattern in ("*.safetensors", "*.bin", "*.pt")
                   for file in folder.glob(pattern))
    import torch

    from lm.build import build_tiny_policy
    from lm.tokenizer import build_char_tokenizer

    model = config.model
    with torch.device("meta"):
        policy = build_tiny_policy(build_char_tokenizer(), model.hidden_size, model.num_layers, model.num_heads,
                                   model.intermediate_size, model.max_positions)
    return 4 * sum(parameter.numel() for parameter in policy.parameters())


def check_wandb(config: RunConfig) -> None:
    """An online W&B run needs credentials: without them wandb.init would ask for them (or fail) mid-start."""
    mode = resolve_wandb_mode(config.logging.wandb_mode)
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"WANDB_MODE {mode!r}: expected online, offline or disabled")
    if mode == "online" and not wandb_credentials():
        raise ConfigError("--logging.wandb_mode online: no W&B credentials (set WANDB_API_KEY or run `wandb login`); "
                          "or log offline with --logging.wandb_mode offline")


def local_resources() -> dict[str, int]:
    """The CPUs this process may use and the GPUs torch sees: what a local Ray cluster offers."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"CPU": cpus, "GPU": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def check_local_resources(config: RunConfig) -> None:
    """On a local Ray cluster (no --ray-address), the dashboard's host is an address of this machine, and every
    placement group fits this machine (otherwise Ray would wait --cluster.timeout_s for resources that never
    come)."""
    if config.cluster.ray_address:
        return
    host = config.cluster.dashboard_host
    try:  # the dashboard of a local cluster listens here: an address of this machine
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"--cluster.dashboard_host {host!r}: not an address this machine can listen on "
                          f"({reason}); expected e.g. 127.0.0.1 or 0.0.0.0") from None
    have = local_resources()
    for kind in (SEARCH_WORKER, TRAINER_RANK):
        group = group_of(kind, config.cluster)
        for resource, amount in group.bundle.items():
            total = group.count * amount
            if total > have.get(resource, 0) + 1e-9:
                raise ConfigError(f"the {group.name} placement group needs {total:g} {resource}s "
                                  f"({group_flags(group, resource, config.cluster)}), and this machine has "
                                  f"{have.get(resource, 0)} for a local Ray cluster; ask for fewer, or join a "
                                  f"cluster with --ray-address")
