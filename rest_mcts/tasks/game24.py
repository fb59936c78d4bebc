"""Game of 24 (as in Tree of Thoughts): combine four numbers with + - * / into 24, each number used once.

Shipped: the 1,362 puzzles of princeton-nlp/tree-of-thought-llm's `24.csv` (MIT), ranked by human solve time.
Splits follow Tree of Thoughts: test = ranks 901-1000; ood = ranks 1001-1362 (the hardest); seed and train = a
shuffle of ranks 1-900 (`--task.test_path` / `--task.ood_path` give those splits files of their own). A step
combines two of the numbers left, `4 * 6 = 24 (left: 1 1 24)`; the final step is `Answer: (1 + 1) * ... = 24`.
Many answers are right: the oracle answer is the puzzle itself, and an answer is right when its expression uses
exactly the four numbers, each once, and equals 24 in exact rational arithmetic (`rest_mcts.answers.game24_value`;
division by zero is wrong). The warm start's worked solutions come from an exact solver.
"""

from __future__ import annotations

import csv
import itertools
import random
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from lm.data import Problem
from rest_mcts.answers import game24_value
from rest_mcts.tasks.base import SPLITS
from rest_mcts.tasks.data_task import SHIPPED, DataError, DataTask, FileSizes, Row

TARGET = 24
TEST_RANKS = (901, 1000)
"""Tree of Thoughts' test puzzles (1-based ranks, inclusive); later ranks are the ood split."""
_ANSWER = re.compile(r"answer\s*:\s*(.*)", re.IGNORECASE)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def solve(numbers: Sequence[int]) -> list[str] | None:
    """Steps of one solution of the puzzle (three combinations, then the answer line), or None when it has none.
    Deterministic: pairs and operations are tried in a fixed order."""

    def search(items: list[tuple[Fraction, str]], steps: list[str]) -> tuple[list[str], str] | None:
        if len(items) == 1:
            return (steps, items[0][1]) if items[0][0] == TARGET else None
        for i, j in itertools.permutations(range(len(items)), 2):
            (a, a_text), (b, b_text) = items[i], items[j]
            if (a, b) == (b, a) and i > j:
                continue
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            for symbol in "+*-/":
                if (symbol in "+*" and i > j) or (symbol == "/" and b == 0):
                    continue  # commutative operations: each pair once
                value = {"+": a + b, "-": a - b, "*": a * b}[symbol] if symbol != "/" else a / b
                left = " ".join(_number(v) for v in sorted([value] + [item[0] for item in rest]))
                line = f"{_number(a)} {symbol} {_number(b)} = {_number(value)} (left: {left})\n"
                text = f"{a_text} {symbol} {b_text}" if not rest else f"({a_text} {symbol} {b_text})"
                found = search(rest + [(value, text)], steps + [line])
                if found is not None:
                    return found
        return None

    found = search([(Fraction(n), str(n)) for n in numbers], [])
    if found is None:
        return None
    steps, expression = found
    return steps + [f"Answer: {expression} = {TARGET}\n"]


class Game24Task(DataTask):
    name = "game24"
    default_instruction = ("Use the four numbers and + - * / to obtain 24, each number exactly once. Combine two "
                           "numbers per line as 'a op b = c (left: ...)'; end with 'Answer: <expression> = 24'.")
    shipped_train = SHIPPED / "game24" / "24.csv"

    def source(self, split: str) -> Path | None:
        """One ranked CSV holds every split (test and ood by rank), unless --task.test_path / ood_path give theirs."""
        own = {"test": self.options.test_path, "ood": self.options.ood_path}.get(split)
        if own:
            return Path(own)
        return Path(self.options.data_path) if self.options.data_path else self.shipped_train

    def read_rows(self, path: Path) -> list[Row]:
        """The puzzles of a `24.csv` file (a `Puzzles` column of four space-separated integers), in rank order."""
        if not path.is_file():
            raise DataError(f"{path}: no such file; expected a CSV with a Puzzles column")
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Excel's UTF-8 CSV) is not a header
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 (byte {error.start})") from None
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "Puzzles" not in reader.fieldnames:
            raise DataError(f"{path}:1: no Puzzles column (header {reader.fieldnames}); expected the 24.csv layout")
        rows = []
        for record in reader:
            numbers = (record.get("Puzzles") or "").split()
            if len(numbers) != 4 or not all(n.isascii() and n.isdigit() for n in numbers):
                given = (record.get("Puzzles") or "")[:40]
                raise DataError(f"{path}:{reader.line_num}: Puzzles {given!r}; expected four integers")
            puzzle = " ".join(str(int(n)) for n in numbers)
            rows.append(Row(Problem(f"{self.role_of(path)}-{len(rows) + 1:04d}", puzzle, puzzle), ""))
        if not rows:
            raise DataError(f"{path}: empty; expected puzzles after the header")
        return rows

    def file_sizes(self) -> FileSizes:
        """The ranks before the test ranks are seed and train's; the test and ood splits are read whole."""
        pool = self._files[str(self.source("train"))][:TEST_RANKS[0] - 1]
        return FileSizes(len(pool), len(self.split_rows("test", 0)), len(self.split_rows("ood", 0)),
                         bool(self.solution_field))

    def split_rows(self, split: str, seed: int) -> list[Row]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        rows = self._files[str(self.source("train"))]
        first, last = TEST_RANKS
        if split in ("test", "ood") and self.source(split) != self.source("train"):
            return list(self._files[str(self.source(split))])
        if split == "test":
            return rows[first - 1:last]
        if split == "ood":
            return rows[last:]
        pool = list(rows[:first - 1])
        random.Random(f"{self.name}/{seed}").shuffle(pool)
        seed_count = self.options.seed_problems
        return pool[:seed_count] if split == "seed" else pool[seed_count:]

    def solution_steps(self, row: Row) -> list[str]:
        steps = solve([int(n) for n in row.problem.question.split()])
        if steps is None:
            raise DataError(f"Game of 24 puzzle {row.problem.question!r} ({row.problem.id}) has no solution")
        return [step.replace("\n", self.step_delimiter) for step in steps]

    def is_final_step(self, step_text: str) -> bool:
        return _ANSWER.search(step_text) is not None

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        matches = _ANSWER.findall("".join(steps).replace("**", ""))  # "**Answer:** ..." in markdown
        return matches[-1].strip() if matches else None

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        return answer is not None and game24_value(answer, [int(n) for n in oracle.split()], TARGET)
