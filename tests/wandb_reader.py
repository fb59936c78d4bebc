"""Reads the history rows of an offline W&B run file (`run-<id>.wandb`) for tests.

The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks
of records, each with a 7-byte header (crc32, little-endian length, type) and a chunk of a
serialized `wandb_internal_pb2.Record`; types 1-4 are full, first, middle and last chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

BLOCK_SIZE = 32 * 1024
HEADER_SIZE = 7


def _records(data: bytes) -> list[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    records, pending, position = [], b"", HEADER_SIZE
    while position + HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < HEADER_SIZE:
            position += left_in_block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + HEADER_SIZE : position + HEADER_SIZE + length]
        position += HEADER_SIZE + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
        elif kind == 0 and length == 0:
            position += left_in_block - HEADER_SIZE  # zero padding up to the block's end
    return records


def finished_records(run_file: Path, timeout_s: float = 120.0) -> list:
    """The run's records (`wandb_internal_pb2.Record`), once the file holds its exit record. W&B's service process
    writes the file on its own after `run.finish()` returns; read at once on a loaded machine, the file held only
    its first records (no history yet), so the reader waits for the exit record, up to `timeout_s`."""
    import time

    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + timeout_s
    while True:
        records = []
        for raw in _records(run_file.read_bytes()):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(raw)
            records.append(record)
        if any(record.WhichOneof("record_type") == "exit" for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def history_rows(run_file: Path) -> list[dict]:
    """Every `wandb.log` row of the run, as {key: value}."""
    rows = []
    for record in finished_records(run_file):
        if record.WhichOneof("record_type") == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def run_identity(run_file: Path) -> dict:
    """The run record's group, job type, tags and display name (what W&B groups and filters runs by)."""
    for record in finished_records(run_file):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            return {"group": run.run_group, "job_type": run.job_type, "tags": list(run.tags),
                    "name": run.display_name}
    raise ValueError(f"{run_file}: no run record")
