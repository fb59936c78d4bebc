"""Tasks: problems, prompts, step delimiters, answer extraction and checking."""

from __future__ import annotations

from rest_mcts.tasks.base import SPLITS, Task
from rest_mcts.tasks.data_task import DataError, DataTask, JsonlTask
from rest_mcts.tasks.game24 import Game24Task
from rest_mcts.tasks.gsm8k import GSM8KTask
from rest_mcts.tasks.last_letter import LastLetterTask
from rest_mcts.tasks.math_task import MathTask
from rest_mcts.tasks.modchain import ModChainTask
from rest_mcts.tasks.modtarget import ModTargetTask
from rest_mcts.tasks.word_sort import WordSortTask

TASKS = {"modtarget": ModTargetTask, "modchain": ModChainTask, "last_letter": LastLetterTask, "word_sort": WordSortTask,
         "gsm8k": GSM8KTask, "math": MathTask, "game24": Game24Task, "jsonl": JsonlTask}
"""Synthetic tasks (built-in generators, true step labels) and data tasks (files, real answer formats)."""


def get_task(spec, tokenizer=None) -> Task:
    """The task `spec` names: a task name, or a `config.TaskConfig` whose data fields a data task reads.
    `tokenizer` (the policy's) gives data tasks its chat template. Unknown names raise ValueError listing the
    known ones."""
    name = spec if isinstance(spec, str) else spec.name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    if issubclass(TASKS[name], DataTask):
        return TASKS[name](None if isinstance(spec, str) else spec, tokenizer)
    return TASKS[name]()


def load_task(spec, policy_path: str | None = None) -> Task:
    """`get_task(spec)` with the tokenizer saved at `policy_path` (data tasks only: their prompts use its chat
    template; every checkpoint of a run saves the same tokenizer)."""
    name = spec if isinstance(spec, str) else spec.name
    tokenizer = None
    if policy_path and name in TASKS and issubclass(TASKS[name], DataTask):
        from lm.build import load_tokenizer

        tokenizer = load_tokenizer(policy_path)
    return get_task(spec, tokenizer)


__all__ = ["SPLITS", "TASKS", "DataError", "Task", "get_task", "load_task"]
