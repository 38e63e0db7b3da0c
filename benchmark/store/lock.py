"""Who is working on what: a lock file per run and per cached base network, which another process
waits on while its holder lives and takes over once the holder is gone.

The lock is a file created with ``O_CREAT | O_EXCL``, atomic on a local disk, on NFS (version 3 and
later) and on Lustre, unlike ``flock``, which NFS mounted with ``nolock`` and Lustre mounted without
``-o flock`` (or with ``-o localflock``) keep to one machine. It holds its holder's host, pid and a
token of its own, and the holder touches it every ``heartbeat_s`` seconds while it works. A waiting
process takes the lock over, with a warning, when

* its holder ran on this machine and its process is gone (SIGKILL, out of memory, a crash): at once;
* or the file has not been touched for ``stale_s`` seconds (its holder's machine died, or the holder
  hangs): the waiter compares the file's modification time with itself, not with its own clock, so
  machines whose clocks differ from each other's or the file server's do not matter.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockTiming:
    """conf/config.yaml ``lock``: how often a holder shows it lives, when a silent one counts as
    gone, how often a waiter looks again."""

    heartbeat_s: float
    stale_s: float
    poll_s: float


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str

    @staticmethod
    def me() -> Holder:
        return Holder(socket.gethostname(), os.getpid(), secrets.token_hex(8))

    def gone(self) -> bool:
        """It ran on this machine and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process
            return False
        return False

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@contextlib.contextmanager
def held(path: Path, timing: LockTiming, what: str) -> Iterator[bool]:
    """Hold the lock file ``path`` on ``what`` (for the log) for the block: wait while a live process
    holds it, take it over from a gone one, and show that this one lives while it works. The block
    gets True when a live process held it and released it meanwhile (its work is done: a run's
    result is there, whatever its status)."""
    me, handed_over = _acquire(path, timing, what)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, me, timing.heartbeat_s, stop), daemon=True)
    beat.start()
    try:
        yield handed_over
    finally:
        stop.set()
        beat.join()
        _release(path, me, what)


def _acquire(path: Path, timing: LockTiming, what: str) -> tuple[Holder, bool]:
    """This process as the lock's holder, and whether a live holder released it to it."""
    me = Holder.me()
    path.parent.mkdir(parents=True, exist_ok=True)
    watched, since, told, taken = None, time.monotonic(), False, False
    while not _create(path, me):
        seen = _look(path)
        if seen is None:  # released meanwhile
            continue
        if seen != watched:  # a new holder, or a heartbeat: it lives
            watched, since = seen, time.monotonic()
        holder = _holder(seen[0])
        silent = time.monotonic() - since
        gone = holder is not None and holder.gone()
        if gone or silent >= timing.stale_s:
            log.warning("taking over %s from %s: %s (lock %s)", what, holder or "a process that never "
                        "wrote its name", "its process is gone" if gone else
                        f"its lock was not touched for {silent:.0f} s", path)
            _take_over(path, seen[0])
            taken = True
        elif not told:
            log.info("%s is being worked on by %s; waiting for it (lock %s)", what, holder, path)
            told = True
        else:
            time.sleep(timing.poll_s)
    return me, told and not taken


def _create(path: Path, me: Holder) -> bool:
    """Create the lock file with ``me`` in it; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(me), f)
    return True


def _look(path: Path) -> tuple[bytes, float] | None:
    """The lock file's content and modification time; None when there is none."""
    try:
        return path.read_bytes(), path.stat().st_mtime
    except FileNotFoundError:
        return None


def _holder(content: bytes) -> Holder | None:
    """Who wrote a lock file (None while its holder is still writing it)."""
    try:
        return Holder(**json.loads(content))
    except (ValueError, TypeError):
        return None


def _take_over(path: Path, stale: bytes) -> None:
    """Remove the lock file that held ``stale``, unless another process took it over first (the
    rename moves exactly one file: the one there now, which is put back if it is not the stale one)."""
    moved = path.with_name(f"{path.name}.{secrets.token_hex(4)}.stale")
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return
    if moved.read_bytes() != stale:
        with contextlib.suppress(FileExistsError):
            os.link(moved, path)
    moved.unlink()


def _ours(path: Path, me: Holder) -> bool:
    seen = _look(path)
    return seen is not None and _holder(seen[0]) == me


def _heartbeat(path: Path, me: Holder, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        if _ours(path, me):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)


def _release(path: Path, me: Holder, what: str) -> None:
    if _ours(path, me):
        path.unlink()
    else:
        log.warning("the lock %s on %s was taken over while this process held it (its heartbeat "
                    "stopped for lock.stale_s seconds?); another process may have done the same work",
                    path, what)
