"""Tasks: problems, prompts, step delimiters, answer extraction and checking."""

from __future__ import annotations

from rest_mcts.tasks.base import SPLITS, Task
from rest_mcts.tasks.last_letter import LastLetterTask
from rest_mcts.tasks.modchain import ModChainTask
from rest_mcts.tasks.modtarget import ModTargetTask
from rest_mcts.tasks.word_sort import WordSortTask

TASKS = {"modtarget": ModTargetTask, "modchain": ModChainTask, "last_letter": LastLetterTask, "word_sort": WordSortTask}


def get_task(name: str) -> Task:
    """The task registered under `name`; unknown names raise ValueError listing the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]()


__all__ = ["SPLITS", "TASKS", "Task", "get_task"]
