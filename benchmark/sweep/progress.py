"""Sweep progress: k / N runs done, elapsed time and ETA, from the files on disk.

Counting ``result.json`` files works the same for in-process, joblib and
submitit jobs, since every launcher writes them into the one sweep directory.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from benchmark.store.results import count_results

PLAN_FILE = "sweep_plan.json"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def write_plan(sweep_dir: Path, total: int) -> None:
    """Record the sweep's size and start (and the runs already done, which a resumed sweep
    skips, so that they do not distort the ETA)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    plan = {"total": total, "started": time.time(), "done_before": count_results(sweep_dir)}
    (sweep_dir / PLAN_FILE).write_text(json.dumps(plan))


def progress_line(sweep_dir: Path) -> str | None:
    """``"12/36 runs done, 1:05 elapsed, ETA 2:10"``, or None outside a planned sweep."""
    plan_path = sweep_dir / PLAN_FILE
    if not plan_path.exists():
        return None
    plan = json.loads(plan_path.read_text())
    done = count_results(sweep_dir)
    total = max(plan["total"], done)
    elapsed = time.time() - plan["started"]
    finished_now = max(done - plan.get("done_before", 0), 1)
    eta = elapsed / finished_now * (total - done)
    return f"{done}/{total} runs done, {_clock(elapsed)} elapsed, ETA {_clock(eta)}"
