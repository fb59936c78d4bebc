"""Records that cross module boundaries (problems, training examples) and their atomic JSONL files."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One problem of a task: its id, the question text and the oracle answer."""

    id: str
    question: str
    answer: str


@dataclass(frozen=True)
class PolicyExample:
    """A verified-correct trace to train the policy on (loss on the solution steps only)."""

    problem_id: str
    prompt: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class ValueExample:
    """A prefix and the PRM's training target for its last step, inferred from a searched tree (`values.target`:
    the hard estimate, or ReST-MCTS*'s quality value v_k)."""

    problem_id: str
    prompt: str
    steps: tuple[str, ...]
    target: float
    """In [0, 1]."""
    step_correct: bool | None = None
    """True correctness of the prefix (all steps right), known on synthetic tasks only."""


@dataclass(frozen=True)
class VerificationExample:
    """A solution (finished, or a prefix for a step verifier) with its oracle label, to train a verifier on.

    `rationale` is a written check of the solution (GenRM-CoT's "Let's verify step by step" text, made by a
    synthetic task's own step checker); empty for a direct verifier, which answers yes/no at once."""

    problem_id: str
    prompt: str
    steps: tuple[str, ...]
    correct: bool
    rationale: str = ""


@dataclass(frozen=True)
class PreferencePair:
    """A correct and an incorrect solution of one problem, for preference training (SimPO, DPO)."""

    problem_id: str
    prompt: str
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]


def to_record(item: Any) -> dict:
    record = asdict(item)
    for key, value in record.items():
        if isinstance(value, tuple):
            record[key] = list(value)
    return record


def from_record(cls: type[T], record: dict, where: str = "") -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(record) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} for {cls.__name__}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
    return cls(**values)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file in the same folder and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, items: Iterable[Any]) -> None:
    """Write dataclasses or dicts as JSON lines, atomically."""
    lines = [json.dumps(item if isinstance(item, dict) else to_record(item)) for item in items]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(where, record) of every non-blank JSON line; `where` is 'path:line'. A line that is not JSON raises
    ValueError naming it."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error.msg})") from None


def read_jsonl(path: str | os.PathLike, cls: type[T] | None = None) -> Iterator[Any]:
    """Read JSON lines; with `cls`, build that dataclass from each line (errors name file and line)."""
    for where, record in read_jsonl_lines(path):
        yield from_record(cls, record, where) if cls is not None else record


def read_appended_jsonl(path: str | os.PathLike) -> list[Any]:
    """The records of a JSONL file that is written by appending whole lines (a stage's finished trees): a torn
    last line (an append the process did not finish: no newline at the end, or not JSON) is cut off the file with
    a warning, so the next append starts on a clean line. A bad line before the last is damage this writer does
    not make: ValueError naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_bytes = [], 0
    lines = data.splitlines(keepends=True)
    for line_number, raw in enumerate(lines, start=1):
        last = line_number == len(lines)
        try:
            if not raw.endswith(b"\n"):
                raise ValueError("no newline at its end")
            record = json.loads(raw) if raw.strip() else None
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if not last:
                raise ValueError(f"{path}:{line_number}: not a JSON line ({error}); the file is damaged "
                                 f"before its last line: remove the file to redo its stage") from None
            logger.warning("%s:%d: torn last line (%d bytes, an interrupted append) discarded", path,
                           line_number, len(raw))
            with open(path, "r+b") as handle:
                handle.truncate(good_bytes)
                handle.flush()
                os.fsync(handle.fileno())
            break
        if record is not None:
            records.append(record)
        good_bytes += len(raw)
    return records
