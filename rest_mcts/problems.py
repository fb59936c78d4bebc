"""The problems of a run, drawn from its task and configuration: the seed solutions, the training pool each round
searches (within the round's difficulty), the dev problems held out of it, and the held-out evaluation splits; and
a data task's split sizes, where none is given, from what its files hold (`resolve_split_sizes`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from lm.data import PolicyExample, Problem
from rest_mcts.config import EvalConfig, RunConfig, TaskConfig
from rest_mcts.tasks import TASKS, DataTask, Task, get_task

SPLIT_SIZES = ("task.seed_problems", "task.train_problems", "task.problems_per_round", "task.test_problems",
               "task.ood_problems", "eval.dev_problems")
"""The sizes a data task takes from its files when they are not given (`resolve_split_sizes`)."""

HELD_OUT_TEST_SHARE = 0.1
"""The share of a data task's training file held out as its test split when the task has no test file."""

DEV_SHARE = 0.2
"""At most this share of a data task's train split is held out as dev problems when their number is not given."""


def resolve_split_sizes(config: RunConfig, given: Collection[str]) -> RunConfig:
    """`config` with a data task's split sizes that were not given (`given`: the `section.key` of every value a
    flag or config file set) taken from its files, so that a file of any size is read without size flags:

    - test: the test file's problems where the task has one (`--task.test_path`, the shipped test file, game24's
      ranks 901-1000), else `HELD_OUT_TEST_SHARE` of the training file (at least one problem);
    - seed and train share the rest of the training file in the defaults' proportions (8000 : 3000) when it holds
      worked solutions; without them the seed split holds only `--task.few_shot`'s examples and train the rest;
      one of the two given, the other takes what is left;
    - ood: the whole ood split where the task has one (`--task.ood_path`, game24's hardest ranks), else none;
    - dev (`eval.dev_problems`): the default, at most `DEV_SHARE` of train; a round searches the default number of
      problems, at most all of train less dev.

    A synthetic task, and a data task whose files cannot be read (the checks of `preflight.check_task_data` name
    the file in their turn), keep the sizes as they are."""
    task_class = TASKS.get(config.task.name)
    if task_class is None or not issubclass(task_class, DataTask) or set(SPLIT_SIZES) <= set(given):
        return config
    try:
        files = get_task(config.task).file_sizes()
    except ValueError:  # DataError, or a value `check_values` refuses with the same words
        return config
    task, defaults = config.task, TaskConfig()

    def size(name: str, from_files: int) -> int:
        section, key = name.split(".")
        return getattr(getattr(config, section), key) if name in given else max(0, from_files)

    test = size("task.test_problems", files.test if files.test is not None else
                max(1, round(files.training * HELD_OUT_TEST_SHARE)))
    rest = files.training - (test if files.test is None else 0)
    seed_share = defaults.seed_problems / (defaults.seed_problems + defaults.train_problems)
    if not files.worked_solutions:
        seed = size("task.seed_problems", min(task.few_shot, rest))
    elif "task.train_problems" in given:
        seed = size("task.seed_problems", rest - task.train_problems)
    else:
        seed = size("task.seed_problems", min(round(rest * seed_share), rest - 1))
    train = size("task.train_problems", max(1, rest - seed))  # a file too small: its split check says so
    dev = size("eval.dev_problems", min(EvalConfig().dev_problems, int(train * DEV_SHARE)))
    sized = replace(task, seed_problems=seed, train_problems=train, test_problems=test,
                    ood_problems=size("task.ood_problems", files.ood),
                    problems_per_round=size("task.problems_per_round",
                                            max(1, min(defaults.problems_per_round, train - dev))))
    return replace(config, task=sized, eval=replace(config.eval, dev_problems=dev))


def split_sizes_line(config: RunConfig) -> str:
    """One line naming a run's split sizes (what a data task's run says at its start)."""
    task = config.task
    return (f"--task {task.name} split sizes: seed {task.seed_problems}, train {task.train_problems} (its last "
            f"{config.eval.dev_problems} held out as dev, {task.problems_per_round} searched a round), test "
            f"{task.test_problems}, ood {task.ood_problems}")


@dataclass(frozen=True)
class RunProblems:
    """The problems of a run: seed solutions, the training pool the rounds search, the dev problems held out of
    it, and the held-out evaluation splits."""

    seed_examples: list[PolicyExample]
    train: list[Problem]
    dev: list[Problem]
    """The end of the pool, never searched for training: each evaluation picks MCTS*'s answer margin on them."""
    held_out: dict[str, list[Problem]]
    max_difficulty: Callable[[int], int | None] = lambda _round_index: None
    """The largest difficulty a round may search (None: any), the task section's schedule."""
    difficulty: Callable[[Problem], int | None] = lambda _problem: None

    @classmethod
    def of(cls, config: RunConfig, task: Task) -> RunProblems:
        data_seed = config.task.data_seed
        pool = task.problems("train", config.task.train_problems, data_seed)
        dev_count = config.eval.dev_problems
        start = config.task.curriculum_start
        start = task.default_curriculum_start if start == -1 else start
        step = config.task.curriculum_step
        return cls(
            seed_examples=task.seed_examples(config.task.seed_problems, data_seed),
            train=pool[:len(pool) - dev_count],
            dev=pool[len(pool) - dev_count:],
            held_out={split: problems for split, problems in (
                ("test", task.problems("test", config.task.test_problems, data_seed)),
                ("ood", task.problems("ood", config.task.ood_problems, data_seed))) if problems},
            max_difficulty=(lambda r: start + r * step) if start > 0 else (lambda _r: None),
            difficulty=task.difficulty,
        )

    def eligible(self, round_index: int) -> list[Problem]:
        """The training problems within round `round_index`'s difficulty, in pool order."""
        limit = self.max_difficulty(round_index)
        return [p for p in self.train if limit is None or (self.difficulty(p) or 0) <= limit]

    def for_round(self, round_index: int, count: int) -> list[Problem]:
        """`count` training problems for round `round_index`, in pool order: those no earlier round searched first
        (then those earlier rounds searched fewest times, so that once all are used the rounds cycle through the
        pool: without a schedule, consecutive slices wrapping around), among the problems within the round's
        difficulty; never one problem twice in a round."""
        searched: dict[str, int] = {}
        for index in range(round_index + 1):
            chosen = sorted(self.eligible(index), key=lambda p: searched.get(p.id, 0))[:count]  # stable: pool order
            for p in chosen:
                searched[p.id] = searched.get(p.id, 0) + 1
        return chosen
