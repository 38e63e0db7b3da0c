"""Atomic files: a reader never sees a half-written checkpoint or result."""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a fresh temporary file beside ``path``, fsync it, then rename it
    over ``path``: a reader or a crash never sees a half-written file. The file gets the
    permissions a plain ``open()`` gives under the user's umask (colleagues on a shared
    cluster can read results), not ``tempfile``'s private 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_file_beside(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _fresh_file_beside(path: Path) -> Path:
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies
            return tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensors_to_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def bytes_to_tensors(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


DIGEST_BYTES = 64  # hex SHA-256 in front of the payload


def write_verified(path: Path, payload: bytes) -> None:
    """Atomically write ``payload`` behind its SHA-256, so a reader can tell it is whole."""
    atomic_write_bytes(path, sha256(payload).encode() + payload)


def read_verified(path: Path) -> bytes:
    """The payload written by :func:`write_verified`; ``ValueError`` if it is damaged."""
    data = path.read_bytes()
    digest, payload = data[:DIGEST_BYTES].decode(errors="replace"), data[DIGEST_BYTES:]
    if sha256(payload) != digest:
        raise ValueError("checksum mismatch (truncated or corrupt file)")
    return payload
