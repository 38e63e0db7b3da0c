"""Read the records of an offline W&B run file (``run-*.wandb``) without W&B's service.

The file is W&B's header (``:W&B`` magic, version, 7 bytes) followed by LevelDB
log blocks of 32 KiB; each record is a protobuf ``Record``, possibly split in
fragments (FULL=1, FIRST=2, MIDDLE=3, LAST=4) behind a 7-byte header
(CRC32C, length, type).
"""
from __future__ import annotations

import struct
import time
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:
            pos += room
            continue
        fragment = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        pending = fragment if kind in (1, 2) else pending + fragment
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def summary_and_run(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The final summary items (key -> JSON value) and the run's name, group and job type,
    read once the run is closed: W&B's service may still be writing the file when the
    process that logged it has exited."""
    summary, run = {}, {}
    for record in closed_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            summary.update({item.key: item.value_json for item in record.summary.update})
        elif kind == "run":
            run = {"name": record.run.display_name, "group": record.run.run_group,
                   "job_type": record.run.job_type}
    return summary, run


def run_id_and_steps(path: Path, closed: bool = True) -> tuple[str, list[int]]:
    """The run's id and the steps of its history records, in the order they were logged;
    ``closed=False`` reads a killed run's file, which never gets its ``exit`` record."""
    run_id, steps = "", []
    for record in closed_records(path) if closed else records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id = record.run.run_id
        elif kind == "history":
            steps.append(record.history.step.num)
    return run_id, steps


def closed_records(path: Path, timeout: float = 60) -> list[wandb_internal_pb2.Record]:
    """The records of a run file once W&B has written its ``exit`` record: in-process runs
    return from ``finish()`` before W&B's service has flushed everything to the file."""
    deadline = time.time() + timeout
    while True:
        found = records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.time() > deadline:
            return found
        time.sleep(0.2)
