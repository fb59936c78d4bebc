"""`python -m rest_mcts.export`: one round's training data in the formats other tools read, the PRM's value
examples as TRL's stepwise-supervision JSONL and the policy's verified traces as SFT JSONL (chat messages or
prompt-completion). It only reads the run folder; everything goes to --out.

prm_stepwise.jsonl, one row per solution path: {"prompt": str, "completions": [str, ...], "labels": [float | null,
...]}. Value examples are one per prefix (the target of its last step); the prefixes of one (problem_id, prompt)
that lead to the same longest path become one row, with at each step the target of the prefix ending there, and a
prefix that no longer example extends is a row of its own, so branching solutions give one row per branch and the
steps they share carry the same label in each. Labels are the targets as inferred, floats in [0, 1], never rounded
(duplicate prefixes: the mean of their targets); a step whose prefix has no value example is labelled null (an
unsolved tree's wrong solution is labelled at its last step only, `values.unsolved_trees`).

Step texts: our steps end with the task's step delimiter (the last may have ended at EOS without it), and TRL joins
completions with its `step_separator` (default "\\n") after every step, putting the label on the separator's last
token. So each completion is its step with one trailing delimiter removed, and export_meta.json records the
delimiter as `step_separator`: TRL with that separator rebuilds the text the PRM was trained on, token for token
whenever the tokenizer splits at the delimiter.

policy_sft.jsonl, one row per verified trace: {"messages": [{"role": "user", "content": question}, {"role":
"assistant", "content": steps joined}]} (`--format messages`; the question is the problem's, found by rebuilding the
run's seed and train problems, else the prompt text) or {"prompt": exact prompt, "completion": steps joined}
(`--format prompt-completion`: the exact text the policy was trained on, no chat template).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from lm.data import PolicyExample, ValueExample, atomic_write_text, from_record, read_jsonl_lines, write_jsonl
from rest_mcts.config import ConfigError, RunConfig
from rest_mcts.flags import read_saved_config
from rest_mcts.prompting import PromptStyle, chat_messages
from rest_mcts.rounds import Round, finished_rounds
from rest_mcts.tasks import DataTask, Task, load_task
from rest_mcts.tracking import console_logging

logger = logging.getLogger("rest_mcts")

PRM_FILE = "prm_stepwise.jsonl"
POLICY_FILE = "policy_sft.jsonl"
META_FILE = "export_meta.json"
SOURCES = {"prm": "value_examples.jsonl", "policy": "policy_examples.jsonl"}
"""The round file each export reads (written by the infer_values and filter_traces stages)."""
FORMATS = ("messages", "prompt-completion")


# -- rows -------------------------------------------------------------------------------------------


def stepwise_rows(value_examples: Iterable[ValueExample], step_delimiter: str = "\n") -> list[dict]:
    """TRL stepwise-supervision rows {"prompt", "completions", "labels"} from per-prefix value examples.

    One row per path that no other example of the same (problem_id, prompt) extends, in the order each path's
    example first appears; `completions[i]` is step i with one trailing `step_delimiter` removed and `labels[i]`
    the target (float) of the prefix ending at step i, the mean where that prefix has several examples, None
    where it has none. Examples without steps carry no step to label and are left out.
    """
    groups: dict[tuple[str, str], dict[tuple[str, ...], list[float]]] = {}
    for example in value_examples:
        if example.steps:
            groups.setdefault((example.problem_id, example.prompt), {}).setdefault(
                tuple(example.steps), []).append(float(example.target))
    rows = []
    for (_, prompt), targets in groups.items():
        extended = {steps[:length] for steps in targets for length in range(1, len(steps))}
        for steps in targets:
            if steps in extended:
                continue
            rows.append({
                "prompt": prompt,
                "completions": [step_text.removesuffix(step_delimiter) for step_text in steps],
                "labels": [_mean(targets.get(steps[:length])) for length in range(1, len(steps) + 1)],
            })
    return rows


def _mean(values: list[float] | None) -> float | None:
    """None for no values; the value itself when all agree (exact, unlike a sum divided back), else the mean."""
    if not values:
        return None
    return values[0] if all(value == values[0] for value in values) else fmean(values)


def sft_rows(policy_examples: Iterable[PolicyExample], questions: Mapping[str, str] | None = None,
             format: str = "messages", style: PromptStyle | None = None) -> list[dict]:
    """SFT rows of verified traces, one per example, the completion being the steps joined exactly as trained.

    `format="messages"`: {"messages": [user: the question, assistant: the steps]}, the question looked up by
    problem id in `questions` (the prompt text where it is missing). `format="prompt-completion"`: {"prompt": the
    exact prompt, "completion": the steps}. With a data task's prompt `style`, the messages are its conversation
    (`prompting.chat_messages`: the instruction as the system turn, its few-shot turns, the question, the steps).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown SFT format {format!r}; expected one of {FORMATS}")
    questions = questions or {}
    rows = []
    for example in policy_examples:
        completion = "".join(example.steps)
        if format == "prompt-completion":
            rows.append({"prompt": example.prompt, "completion": completion})
        else:
            question = questions.get(example.problem_id, example.prompt)
            rows.append({"messages": chat_messages(style or PromptStyle(), question, completion)})
    return rows


# -- reading a run ----------------------------------------------------------------------------------


def load_run_config(run_dir: Path) -> RunConfig:
    """The run's config.yaml, read as `iterate --resume` reads it; errors name the folder or the file."""
    if not run_dir.is_dir():
        raise ConfigError(f"--run {run_dir}: no such run folder")
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"--run {run_dir}: not an iterate run folder (no {saved})")
    return read_saved_config(saved)


def pick_round(run_dir: Path, round_index: int | None, what: Sequence[str]) -> Round:
    """Round `round_index` (finished or not: its example files are written whole, at their stage's end), else the
    last finished round holding the files `what` needs; errors name the missing paths."""
    if round_index is not None:
        round_ = Round.of(run_dir, round_index)
        missing = [str(round_.path / SOURCES[part]) for part in what if not (round_.path / SOURCES[part]).is_file()]
        if missing:
            raise ConfigError(f"--round {round_index}: missing {', '.join(missing)}")
        return round_
    for index in reversed(finished_rounds(run_dir)):
        round_ = Round.of(run_dir, index)
        if all((round_.path / SOURCES[part]).is_file() for part in what):
            return round_
    wanted = " and ".join(str(run_dir / "round_NN" / SOURCES[part]) for part in what)
    raise ConfigError(f"--run {run_dir}: no finished round (round_NN/DONE) holds {wanted}")


def read_examples(path: Path, cls: type) -> list:
    """`cls` records of a JSONL file, checked: steps are strings and value targets lie in [0, 1]; errors name the
    file and line."""
    examples = []
    for where, record in read_jsonl_lines(path):
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        steps = record.get("steps")
        if not isinstance(steps, list) or not all(isinstance(step_text, str) for step_text in steps):
            raise ValueError(f"{where}: steps must be a list of strings, got {steps!r}")
        try:
            example = from_record(cls, record, where)
        except TypeError as error:  # a missing key
            raise ValueError(f"{where}: not a {cls.__name__} record ({error})") from None
        target = getattr(example, "target", 0.0)
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 <= target <= 1.0:
            raise ValueError(f"{where}: target {target!r} is not a number in [0, 1]")
        examples.append(example)
    return examples


def run_task(config: RunConfig, run_dir: Path) -> Task:
    """The run's task as the run built it: its task section, and for a data task the tokenizer of the run's first
    policy checkpoint (round 0's `init_policy`, else `model.policy_model`), whose chat template its prompts use."""
    init_policy = run_dir / "round_00" / "init_policy"
    policy = str(init_policy) if (init_policy / "config.json").exists() else config.model.policy_model or None
    return load_task(config.task, policy)


def run_questions(config: RunConfig, task: Task, problem_ids: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(question, prompt) by problem id for `problem_ids`, from the run's seed and train problems rebuilt as the
    run drew them (`RunProblems.of`): two maps, problem id to question and problem id to the task's prompt."""
    data_seed = config.task.data_seed
    questions, prompts = {}, {}
    for split, count in (("seed", config.task.seed_problems), ("train", config.task.train_problems)):
        for problem in task.problems(split, count, data_seed):
            if problem.id in problem_ids:
                questions[problem.id] = problem.question
                prompts[problem.id] = task.format_prompt(problem)
    return questions, prompts


# -- the export -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What an export writes: the rows of each file by file name, and export_meta.json's content."""

    files: dict[str, list[dict]]
    meta: dict


def build_export(run_dir: Path, round_index: int | None, what: Sequence[str], sft_format: str) -> Export:
    """Read and check everything the export needs, then build its rows; raises ConfigError or ValueError naming
    the path at fault before anything is written."""
    config = load_run_config(run_dir)
    task = run_task(config, run_dir)
    step_delimiter = task.step_delimiter
    round_ = pick_round(run_dir, round_index, what)
    files: dict[str, list[dict]] = {}
    meta: dict = {"run": str(run_dir.resolve()), "round": round_.index, "task": config.task.name,
                  "step_separator": step_delimiter,
                  "source_files": {"config": str((run_dir / "config.yaml").resolve()),
                                   **{part: str((round_.path / SOURCES[part]).resolve()) for part in what}},
                  "files": {}}
    if "prm" in what:
        examples = read_examples(round_.path / SOURCES["prm"], ValueExample)
        rows = stepwise_rows(examples, step_delimiter)
        files[PRM_FILE] = rows
        meta["files"]["prm"] = PRM_FILE
        meta["prm"] = _prm_counts(examples, rows, step_delimiter)
    if "policy" in what:
        examples = read_examples(round_.path / SOURCES["policy"], PolicyExample)
        questions: dict[str, str] = {}
        if sft_format == "messages":
            found, prompts = run_questions(config, task, {example.problem_id for example in examples})
            # a question counts only where the rebuilt problem gives the very prompt the run trained on
            mismatched = {e.problem_id for e in examples if prompts.get(e.problem_id) != e.prompt}
            questions = {problem_id: question for problem_id, question in found.items()
                         if problem_id not in mismatched}
        files[POLICY_FILE] = sft_rows(examples, questions, sft_format,
                                      task.prompt_style() if isinstance(task, DataTask) else None)
        meta["files"]["policy"] = POLICY_FILE
        meta["policy"] = {"format": sft_format, "rows": len(examples),
                          "questions_from_prompt": sum(e.problem_id not in questions for e in examples)
                          if sft_format == "messages" else 0}
    return Export(files, meta)


def _prm_counts(examples: Sequence[ValueExample], rows: Sequence[dict], step_delimiter: str) -> dict[str, int]:
    """export_meta.json's "prm" counts: rows, steps, unlabelled (null) steps, duplicate and empty examples, and
    the rows whose last step ended at EOS without the delimiter (TRL adds a separator there that training lacked)."""
    distinct = {(e.problem_id, e.prompt, tuple(e.steps)) for e in examples if e.steps}
    extended = {key[:2] + (key[2][:length],) for key in distinct for length in range(1, len(key[2]))}
    return {
        "rows": len(rows),
        "value_examples": len(examples),
        "examples_without_steps": sum(not e.steps for e in examples),
        "duplicate_examples": sum(bool(e.steps) for e in examples) - len(distinct),
        "steps": sum(len(row["labels"]) for row in rows),
        "unlabelled_steps": sum(label is None for row in rows for label in row["labels"]),
        "rows_with_unlabelled_steps": sum(None in row["labels"] for row in rows),
        "rows_ending_without_delimiter": sum(not key[2][-1].endswith(step_delimiter)
                                             for key in distinct - extended),
    }


def write_export(export: Export, out: Path) -> None:
    """Each file atomically, export_meta.json last (its presence means the files beside it are whole)."""
    for name, rows in export.files.items():
        write_jsonl(out / name, rows)
    atomic_write_text(out / META_FILE, json.dumps(export.meta, indent=2) + "\n")


# -- command line -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rest_mcts.export",
        description="Export one round of an iterate run as TRL-format JSONL: the PRM's value examples as "
                    f"stepwise supervision ({PRM_FILE}), the policy's verified traces as SFT data ({POLICY_FILE}), "
                    f"and {META_FILE} (counts, step separator, source files). docs/export.md.")
    parser.add_argument("--run", required=True, help="An iterate run folder (it holds config.yaml).")
    parser.add_argument("--round", type=int, default=None,
                        help="Which round (default: the last finished round holding the files --what needs).")
    parser.add_argument("--out", required=True, help="Folder to write the JSONL files and export_meta.json into.")
    parser.add_argument("--what", nargs="+", choices=sorted(SOURCES), default=["prm", "policy"],
                        help="Which data to export (default: both).")
    parser.add_argument("--format", choices=FORMATS, default="messages",
                        help="SFT rows: chat messages with the problem's question (default), or the exact "
                             "prompt and completion text the policy trained on.")
    return parser


def main(argv: list[str] | None = None) -> int:
    console_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    what = [part for part in SOURCES if part in args.what]
    out = Path(args.out)
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: exists and is not a folder")
        export = build_export(Path(args.run), args.round, what, args.format)
    except (ConfigError, ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    write_export(export, out)
    for part, name in export.meta["files"].items():
        logger.info("%s: %d rows from %s -> %s", part, export.meta[part]["rows"], export.meta["source_files"][part],
                    out / name)
    unlabelled = export.meta.get("prm", {}).get("rows_with_unlabelled_steps", 0)
    if unlabelled:
        logger.info("prm: %d rows have steps labelled null (no value example for that prefix); TRL's PRMTrainer "
                    "needs every step labelled: see docs/export.md", unlabelled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
