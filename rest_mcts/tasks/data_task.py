"""Tasks on real data sets read from files: the shared reading, validation and splitting, and the generic JSONL
task (`--task jsonl --task.data_path FILE --task.question_field ... --task.answer_field ...`).

A data file is read whole and checked before any problem is used: a file that is empty, not UTF-8, a line that
is not a JSON object, a missing field, a field of the wrong type or a gold answer that cannot be parsed raises
`DataError` naming the file and line. Splits are fixed by `task.data_seed`: the seed split (worked solutions for
the warm start) and the train pool are disjoint slices of one shuffle of the training file; the test split is
the test file's first problems in file order, or, without one, a slice of the training file that neither seed
nor train ever holds. Files are read as users write them: a UTF-8 byte-order mark and CRLF line ends are accepted.
"""

from __future__ import annotations

import codecs
import itertools
import json
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lm.data import PolicyExample, Problem
from rest_mcts.answers import (
    MATH_ORDER,
    NUMERIC_ORDER,
    GoldAnswerError,
    gold_number,
    numeric_answer,
    same_number,
    strict_answer,
    to_number,
)
from rest_mcts.config import ANSWER_FORMATS, TaskConfig
from rest_mcts.math_answers import parses, same_answer
from rest_mcts.prompting import PromptStyle, build_prompt, chat_template_of
from rest_mcts.tasks.base import SPLITS, Task

SHIPPED = Path(__file__).resolve().parent / "data"
"""Data files shipped with the package, each folder with its source's license."""



class DataError(ValueError):
    """A data file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    """One problem read from a file, and its worked solution's text ('' when the file has none)."""

    problem: Problem
    solution: str


MAX_LINE_BYTES = 2**20
"""The longest line a data file may have (a GSM8K line is about 1 KB, a MATH solution rarely 10 KB)."""


def read_json_lines(path: Path, fields: Sequence[str]) -> list[tuple[int, dict]]:
    """(line number, object) of every non-blank line of JSONL file `path`; each object must hold `fields`.
    Raises DataError naming the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: {'a folder' if path.is_dir() else 'no such file'}; expected a JSONL data file")
    rows = []
    with open(path, "rb") as handle:
        for number in itertools.count(1):
            raw = handle.readline(MAX_LINE_BYTES + 1)  # never more than the limit in memory
            if not raw:
                break
            where = f"{path}:{number}"
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{where}: a line longer than {MAX_LINE_BYTES // 2**20} MiB; expected one problem "
                                f"per line (is the file one JSON document rather than JSON lines?)")
            if number == 1 and raw.startswith(codecs.BOM_UTF8):  # a byte-order mark, as Windows editors write
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{where}: not UTF-8 (byte {error.start}); expected UTF-8 JSON lines") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: a JSON {type(record).__name__}; expected an object with fields "
                                f"{list(fields)}")
            for name in fields:
                if name not in record:
                    raise DataError(f"{where}: no field {name!r} (it has {sorted(record)[:12]}); set "
                                    f"--task.question_field / --task.answer_field / --task.solution_field")
            rows.append((number, record))
    if not rows:
        raise DataError(f"{path}: empty; expected one JSON object per line")
    return rows


def count_json_lines(path: Path) -> int:
    """The problems JSONL file `path` holds (its non-blank lines), counted without parsing them and without holding
    more than 1 MiB of a line; whether each line is a usable problem is `read_json_lines`'s to say. Raises DataError
    when `path` is not a file."""
    if not path.is_file():
        raise DataError(f"{path}: {'a folder' if path.is_dir() else 'no such file'}; expected a JSONL data file")
    count, blank = 0, True
    with open(path, "rb") as handle:
        for number in itertools.count():
            piece = handle.readline(MAX_LINE_BYTES)
            if not piece:
                break
            if number == 0:
                piece = piece.removeprefix(codecs.BOM_UTF8)
            blank = blank and not piece.strip()
            if piece.endswith(b"\n"):
                count, blank = count + (not blank), True
    return count + (not blank)


@dataclass(frozen=True)
class FileSizes:
    """What a data task's files hold, for the split sizes a run is not given (`problems.resolve_split_sizes`)."""

    training: int
    """Problems of the training file that seed and train (and a test split held out of it) are drawn from."""
    test: int | None
    """Problems of the test split's own source (None: the test split is held out of the training file)."""
    ood: int
    """Problems of the ood split (0: the task has none)."""
    worked_solutions: bool
    """Whether the seed split gives worked solutions for the warm start (a solution field)."""


def text_field(record: dict, name: str, where: str, numbers_allowed: bool = False) -> str:
    """Field `name` as text: a string (or, where numbers are allowed, a JSON number); else DataError."""
    value = record[name]
    if numbers_allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        expected = "a string or a number" if numbers_allowed else "a string"
        raise DataError(f"{where}: field {name!r} is {type(value).__name__} {str(value)[:40]!r}; expected {expected}")
    if not value.strip():
        raise DataError(f"{where}: field {name!r} is empty")
    return value


def normalise_text(answer: str) -> str:
    """Text answers compare case-folded, NFKC-normalised, with whitespace collapsed and a final period dropped."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", answer)).strip().rstrip(".").strip().casefold()


def math_gold(raw: str, where: str) -> str:
    """A MATH gold answer (a `\\boxed{}` inside is taken), checked to parse with math-verify; DataError if not."""
    answer = strict_answer(raw, MATH_ORDER) if "\\boxed" in raw else raw.strip()
    if not answer or not parses(answer):
        raise DataError(f"{where}: gold answer {raw[:80]!r} does not parse as math (math-verify)")
    return answer


class DataTask(Task):
    """A task whose problems come from files (`TaskConfig`'s data fields) and whose prompts come from
    `rest_mcts.prompting`, with the policy tokenizer's chat template when it has one."""

    synthetic = False
    default_delimiter = "\n"
    default_instruction = ""
    default_question_field = "question"
    default_answer_field = "answer"
    default_solution_field = ""
    shipped_train: Path | None = None
    shipped_test: Path | None = None

    def __init__(self, options=None, tokenizer=None):
        self.options = options if options is not None else TaskConfig(name=self.name)
        self.step_delimiter = self.options.step_delimiter or self.default_delimiter
        self.tokenizer = tokenizer
        self.question_field = self.options.question_field or self.default_question_field
        answer_field = self.options.answer_field or self.default_answer_field
        self.answer_field = "" if answer_field == "none" else answer_field
        self.solution_field = self.options.solution_field or self.default_solution_field
        instruction = self.default_instruction if self.options.instruction == "auto" else self.options.instruction
        self._style = PromptStyle(instruction, (), chat_template_of(tokenizer, self.options.chat_template),
                                  self.step_delimiter)

    # --- files and splits -------------------------------------------------------------------------------------

    def source(self, split: str) -> Path | None:
        """The file a split is read from (None: the split is held out of the training file, or does not exist)."""
        options = self.options
        if split in ("seed", "train"):
            return Path(options.data_path) if options.data_path else self.shipped_train
        if split == "test":
            if options.test_path:
                return Path(options.test_path)
            return None if options.data_path else self.shipped_test
        return Path(options.ood_path) if options.ood_path else None

    def role_of(self, path: Path) -> str:
        """What a file is to the task, the prefix of its problem ids (`train-00012`: line 12 of the training
        file), so that ids never collide across files, whatever they are called."""
        return next((split for split in ("train", "test", "ood") if self.source(split) == path), "data")

    def read_rows(self, path: Path) -> list[Row]:
        """Every problem of data file `path` (DataError naming file and line for anything unusable)."""
        fields = [self.question_field] + [f for f in (self.answer_field, self.solution_field) if f]
        if not self.answer_field and not self.solution_field:
            raise DataError(f"--task {self.name}: no answer field and no solution field; set --task.answer_field")
        rows = []
        for number, record in read_json_lines(path, fields):
            where = f"{path}:{number}"
            question = text_field(record, self.question_field, where)
            solution = text_field(record, self.solution_field, where) if self.solution_field else ""
            raw_answer = (text_field(record, self.answer_field, where, numbers_allowed=True) if self.answer_field
                          else self.answer_of_solution(solution, where))
            rows.append(Row(Problem(f"{self.role_of(path)}-{number:05d}", question,
                                    self.gold_answer(raw_answer, where)), solution))
        return rows

    @cached_property
    def _files(self) -> dict[str, list[Row]]:
        """The rows of every split's source file, read once."""
        files: dict[str, list[Row]] = {}
        for split in SPLITS:
            path = self.source(split)
            if path is not None and str(path) not in files:
                files[str(path)] = self.read_rows(path)
        return files

    def file_sizes(self) -> FileSizes:
        """How many problems the training, test and ood files hold (counted, not yet checked line by line)."""
        training = self.source("train")
        if training is None:
            raise DataError(f"--task {self.name} ships no training problems; give --task.data_path FILE")
        test, ood = self.source("test"), self.source("ood")
        return FileSizes(count_json_lines(training), None if test is None else count_json_lines(test),
                         0 if ood is None else count_json_lines(ood), bool(self.solution_field))

    def split_rows(self, split: str, seed: int) -> list[Row]:
        """All rows of `split`, in the order problems are drawn."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        path = self.source(split)
        if split in ("test", "ood"):
            if path is not None:
                return list(self._files[str(path)])
            if split == "ood":
                return []
        training = self.source("train")
        if training is None:
            raise DataError(f"--task {self.name} ships no training problems; give --task.data_path FILE")
        rows = list(self._files[str(training)])
        random.Random(f"{self.name}/{seed}").shuffle(rows)
        held = 0 if self.source("test") is not None else self.options.test_problems
        if split == "test":
            return rows[:held]
        seed_count = self.options.seed_problems
        return rows[held:held + seed_count] if split == "seed" else rows[held + seed_count:]

    def problems(self, split: str, count: int, seed: int) -> list[Problem]:
        """`count` problems of `split`; a task without an ood split (no `--task.ood_path`) has none, and
        evaluations skip it."""
        rows = self.split_rows(split, seed)
        if split == "ood" and not rows:
            return []
        if count > len(rows):
            where = self.source(split) or self.source("train")
            flag = {"seed": "seed_problems", "train": "train_problems"}.get(split, f"{split}_problems")
            raise DataError(f"--task.{flag} {count}: the {self.name} {split} split holds {len(rows)} problems "
                            f"({where}; seed and train split one shuffled file, test held out of it when there is "
                            f"no test file)")
        return [row.problem for row in rows[:count]]

    # --- prompts and worked solutions -------------------------------------------------------------------------

    def solution_steps(self, row: Row) -> list[str]:
        """A file's worked solution as steps: split at the step delimiter, each step ending in it; a final line
        stating the answer is added when the solution states none in a strict format."""
        if not row.solution:
            raise DataError(f"--task {self.name}: the data has no worked solutions for the warm start; set "
                            f"--task.solution_field, or start from a trained policy with --policy_train."
                            f"warm_start_steps 0")
        parts = [part.strip() for part in row.solution.split(self.step_delimiter)]
        steps = [part + self.step_delimiter for part in parts if part]
        if not steps or not self.is_final_step(steps[-1]):
            steps.append(self.final_step(row.problem.answer))
        return steps

    def final_step(self, answer: str) -> str:
        return f"The answer is {answer}.{self.step_delimiter}"

    def reference_steps(self, problem: Problem) -> list[str]:
        for split in ("seed", "train"):
            for row in self.split_rows(split, self.options.data_seed):
                if row.problem.id == problem.id:
                    return self.solution_steps(row)
        raise NotImplementedError(f"task {self.name!r} has no worked solution of problem {problem.id}")

    def seed_examples(self, count: int, seed: int) -> list[PolicyExample]:
        """The seed split's worked solutions; none when the data has no solution field."""
        if not self.solution_field:
            return []
        rows = self.split_rows("seed", seed)[:count]
        return [PolicyExample(row.problem.id, self.format_prompt(row.problem), tuple(self.solution_steps(row)))
                for row in rows]

    def prompt_style(self) -> PromptStyle:
        """The style of this task's prompts, with its few-shot examples (the seed split's first solutions)."""
        if not self.options.few_shot or self._style.few_shot:
            return self._style
        rows = self.split_rows("seed", self.options.data_seed)[:self.options.few_shot]
        if len(rows) < self.options.few_shot:
            raise DataError(f"--task.few_shot {self.options.few_shot}: the seed split holds {len(rows)} problems")
        shots = tuple((row.problem.question, "".join(self.solution_steps(row))) for row in rows)
        self._style = PromptStyle(self._style.instruction, shots, self._style.chat_template, self._style.delimiter)
        return self._style

    def format_prompt(self, problem: Problem) -> str:
        return build_prompt(self.prompt_style(), problem.question, self.tokenizer)

    # --- answers ----------------------------------------------------------------------------------------------

    answer_order = NUMERIC_ORDER
    """Where the stated answer is looked for (`answers.strict_answer`)."""

    def answer_of_solution(self, solution: str, where: str) -> str:
        answer = strict_answer(solution, self.answer_order)
        if answer is None:
            raise DataError(f"{where}: the solution states no final answer (no ####, \\boxed{{}} or 'The answer "
                            f"is'); set --task.answer_field")
        return answer

    def gold_answer(self, raw: str, where: str) -> str:
        """The gold answer as stored in a Problem; raises DataError when it cannot be parsed."""
        try:
            return str(gold_number(raw, where))
        except GoldAnswerError as error:
            raise DataError(str(error)) from None

    def is_final_step(self, step_text: str) -> bool:
        return strict_answer(step_text, self.answer_order) is not None

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        """Strict formats first, then the last number (lm-evaluation-harness's flexible extract); numbers are
        written canonically (`18.00` and `$18` give `18`), so votes count equal numbers together."""
        answer = numeric_answer("".join(steps))
        value = to_number(answer)
        return str(value) if value is not None else answer

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        return answer is not None and same_number(answer, oracle)

    def cot_program(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """None: a real solution's translation into a program has to be written by a model (CoTnPoT's second
        pass), which this task does not do; CoTnPoT then keeps every solution as untranslatable."""
        return None

    def is_correct(self, problem: Problem, steps: Sequence[str]) -> bool:
        """A finished solution is graded by the answer it gives, in a strict format or not (a real model often
        ends without the asked-for format; lm-evaluation-harness grades such output by its flexible extract)."""
        return bool(steps) and self.check_answer(self.extract_answer(steps), problem.answer)


class JsonlTask(DataTask):
    """Any JSONL file of questions and answers (`--task.data_path`, field names and `--task.answer_format`)."""

    name = "jsonl"

    def __init__(self, options=None, tokenizer=None):
        answer_format = options.answer_format if options is not None else "number"
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(f"--task.answer_format {answer_format!r}: expected one of {ANSWER_FORMATS}")
        self.answer_format = answer_format
        self.answer_order = MATH_ORDER if answer_format == "math" else NUMERIC_ORDER
        self.default_delimiter = "\n\n" if answer_format == "math" else "\n"  # paragraphs, as the math task's
        super().__init__(options, tokenizer)

    def source(self, split: str) -> Path | None:
        if split in ("seed", "train") and not self.options.data_path:
            raise DataError("--task jsonl: needs --task.data_path FILE (one JSON object per line)")
        return super().source(split)

    def gold_answer(self, raw: str, where: str) -> str:
        if self.answer_format == "number":
            return super().gold_answer(raw, where)
        if self.answer_format == "math":
            return math_gold(raw, where)
        answer = strict_answer(raw, self.answer_order) or raw.strip()
        if not normalise_text(answer):
            raise DataError(f"{where}: gold answer {raw[:80]!r} is empty")
        return answer

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        if self.answer_format == "number":
            return super().extract_answer(steps)
        return strict_answer("".join(steps), self.answer_order)

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        if answer is None:
            return False
        if self.answer_format == "number":
            return same_number(answer, oracle)
        if self.answer_format == "math":
            return same_answer(oracle, answer)
        return normalise_text(answer) == normalise_text(oracle)
