"""Two processes on one sweep directory: every run is trained once (the other process waits for
it), and a lock whose holder died is taken over (benchmark/store/lock.py)."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmark.store.base_cache import BaseCache
from benchmark.store.fingerprint import cache_key
from benchmark.store.lock import LockTiming, held
from conftest import run_cli, sweep_numbers

QUICK = LockTiming(heartbeat_s=0.05, stale_s=1.0, poll_s=0.02)
HOLD = """
import sys, time
from pathlib import Path
from benchmark.store.base_cache import BaseCache
from benchmark.store.fingerprint import cache_key
from benchmark.store.lock import LockTiming, held
with held(Path(sys.argv[1]), LockTiming(heartbeat_s=0.05, stale_s=1.0, poll_s=0.02), "test"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding the lock ``path`` (until it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _acquired_after(path: Path, timing: LockTiming = QUICK) -> float:
    start = time.monotonic()
    with held(path, timing, "test") as handed_over:
        assert path.exists() and not handed_over  # taken over: the gone holder's work is not done
    assert not path.exists()
    return time.monotonic() - start


def test_a_live_holder_is_waited_for_and_a_second_holder_never_enters(tmp_path):
    path, inside, order = tmp_path / "x.lock", threading.Event(), []

    def first() -> None:
        with held(path, QUICK, "test") as handed_over:
            inside.set()
            time.sleep(1.5)  # longer than stale_s: its heartbeat keeps it
            order.append(("first out", handed_over))
    thread = threading.Thread(target=first)
    thread.start()
    inside.wait()
    with held(path, QUICK, "test") as handed_over:  # the first one's work is done
        order.append(("second in", handed_over))
    thread.join()
    assert order == [("first out", False), ("second in", True)]


def test_the_lock_of_a_killed_process_is_taken_over_at_once(tmp_path, caplog):
    path = tmp_path / "x.lock"
    holder = _holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert path.exists()  # left behind
    with caplog.at_level(logging.WARNING):
        waited = _acquired_after(path, LockTiming(heartbeat_s=10, stale_s=600, poll_s=0.02))
    assert waited < 5 and "its process is gone" in caplog.text


def test_a_silent_holder_is_taken_over_after_stale_s(tmp_path, caplog):
    """A holder whose heartbeat stopped (its machine died, or it hangs: here SIGSTOP) loses the lock
    once it has been silent for lock.stale_s, whatever the clocks say."""
    path = tmp_path / "x.lock"
    holder = _holder(path)
    try:
        holder.send_signal(signal.SIGSTOP)
        with caplog.at_level(logging.WARNING):
            waited = _acquired_after(path)
        assert QUICK.stale_s <= waited < QUICK.stale_s + 5
        assert "its lock was not touched for 1 s" in caplog.text
    finally:
        holder.kill()
        holder.wait()


def test_a_cache_with_the_empty_lock_files_of_the_former_flock_is_used_without_waiting(tmp_path):
    import torch

    fields = {"k": 1}
    (tmp_path / f"{cache_key(fields)}.lock").touch()  # what filelock left beside each entry
    cache = BaseCache(tmp_path, LockTiming(heartbeat_s=10, stale_s=600, poll_s=0.02))
    start = time.monotonic()
    trained = cache.get_or_train(fields, lambda checkpoint: ({"w": torch.ones(1)}, {"history": []}))
    assert trained.trained_now and time.monotonic() - start < 5


# ---------------------------------------------------------------- two sweeps on one directory

GRID = ["experiment=smoke", "treatment=base,selffer,transfer", "n=2,5", "finetune=false,true", "target=B",
        "wandb.mode=disabled", "threads=1"]


def trainings(sweep: Path) -> Counter:
    """How often each network (run label, or baseA / baseB) was trained, from the runs' logs."""
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))
    return Counter(re.findall(r"\] - (\S+) epoch 1/", logs))


def _sweep(sweep: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TRANSFERBENCH_CACHE": str(cache), "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "benchmark", "-m", *GRID, *extra, f"hydra.sweep.dir={sweep}"],
                            cwd=sweep.parent, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # three sweeps of the smoke grid: about a minute
def test_two_sweeps_started_together_train_every_run_once(tmp_path):
    cache = tmp_path / "cache"
    reference = _sweep(tmp_path / "reference", cache)
    assert reference.wait(timeout=600) == 0, reference.stdout.read()[-3000:]
    # the base networks are cached now, so both sweeps reach the same runs at the same time
    sweep = tmp_path / "sweep"
    both = [_sweep(sweep, cache), _sweep(sweep, cache)]
    outputs = [proc.communicate(timeout=600)[0] for proc in both]
    assert [proc.returncode for proc in both] == [0, 0], [out[-3000:] for out in outputs]
    trained = trainings(sweep)
    assert set(trained.values()) == {1} and len(trained) == 8, trained  # BnB, AnB x frozen, + x n = 2, 5
    assert "waiting for it" in "".join(outputs)
    assert sweep_numbers(sweep) == sweep_numbers(tmp_path / "reference")
    assert not list(sweep.glob("*/run.lock"))


SLOW_RUN = ["model.width=16", "dataset.params.train_per_class=300", "train.epochs=8"]  # ~1 s an epoch


@pytest.mark.slow  # a sweep killed mid-training and run again
def test_a_run_whose_process_was_killed_is_taken_over_and_finished(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    run_dir = sweep / "BnB+2-seed0"
    killed = _sweep(sweep, cache, "treatment=selffer", "n=2", "finetune=true", *SLOW_RUN)
    deadline = time.time() + 300
    while not (run_dir / "checkpoint.pt").exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert (run_dir / "run.lock").exists() and not (run_dir / "result.json").exists()
    again = run_cli("-m", *GRID, "treatment=selffer", "n=2", "finetune=true", *SLOW_RUN,
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path, env={"TRANSFERBENCH_CACHE": str(cache)},
                    timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"taking over run BnB\+2 seed 0 .* its process is gone", again.stdout), again.stdout[-3000:]
    assert not (run_dir / "run.lock").exists()
    assert (run_dir / "result.json").exists() and trainings(sweep)["BnB+2"] == 1  # resumed, not restarted
