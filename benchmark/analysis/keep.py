"""Keep a sweep in the repository: copy its small outputs (never a network) into a folder of
``docs/sweeps/`` with a provenance file, so that a number the docs quote can be re-aggregated.

    python -m benchmark.analysis.keep SWEEP_DIR docs/sweeps/NAME
    python -m benchmark.analysis.keep --refresh docs/sweeps/NAME   # its reports, by this version

Kept: every run's result.json (at its path under the sweep), results.csv, summary.json, findings.md,
methods.md, measures.md (when the runs took readouts) and Hydra's multirun.yaml; provenance.json
says which command, commits, package versions and machines made it, and when it was kept.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

from benchmark.analysis.collect import collect
from benchmark.analysis.methods import recorded_command
from benchmark.errors import UserError, exit_with
from benchmark.store.results import RESULT_FILE

REPORTS = ("results.csv", "summary.json", "findings.md", "methods.md", "measures.md", "multirun.yaml")
PROVENANCE = "provenance.json"
MAX_BYTES = 20_000_000  # a kept sweep larger than this holds something it should not


def keep_sweep(sweep: Path, dest: Path) -> Path:
    """Copy ``sweep``'s small outputs into ``dest`` (created; an existing kept sweep there is
    replaced) and write its provenance; :class:`UserError` when there is nothing to keep."""
    sweep, dest = Path(sweep), Path(dest)
    if not (sweep / "summary.json").is_file():
        raise UserError(f"{sweep} holds no summary.json; aggregate it first "
                        f"(python -m benchmark.analysis {sweep}), then keep it")
    results = sorted(sweep.rglob(RESULT_FILE))
    size = sum(p.stat().st_size for p in results) + sum(
        (sweep / name).stat().st_size for name in REPORTS if (sweep / name).is_file())
    if size > MAX_BYTES:
        raise UserError(f"{sweep}'s small outputs take {size / 1e6:.0f} MB, more than a kept sweep may "
                        f"({MAX_BYTES / 1e6:.0f} MB); keep a smaller sweep")
    if dest.exists():
        shutil.rmtree(dest)
    for path in results:
        target = dest / path.relative_to(sweep)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for name in REPORTS:
        if (sweep / name).is_file():
            shutil.copyfile(sweep / name, dest / name)
    (dest / PROVENANCE).write_text(json.dumps(provenance(sweep), indent=2) + "\n", encoding="utf-8")
    return dest


def refresh_kept(kept: Path) -> Path:
    """Re-aggregate a kept sweep in place (after a change to the analysis) and keep only its small
    reports: the figures and the table the aggregation also writes are removed again."""
    from benchmark.analysis import aggregate

    kept = Path(kept)
    if not (kept / PROVENANCE).is_file():
        raise UserError(f"{kept} is not a kept sweep (no {PROVENANCE}); keep one with "
                        "python -m benchmark.analysis.keep SWEEP_DIR DEST")
    summary = json.loads((kept / "summary.json").read_text())
    report = aggregate(kept, metric=summary.get("metric", "top1"))
    for path in report.paths.values():
        if path.name not in REPORTS:
            path.unlink(missing_ok=True)
    return kept


def provenance(sweep: Path) -> dict:
    """The command (Hydra's multirun.yaml), commits, package versions and machines of the sweep's runs."""
    records = collect(sweep).results
    distinct = lambda values: sorted({json.dumps(v, sort_keys=True) for v in values})  # noqa: E731
    return {
        "command": recorded_command(sweep),
        "commits": sorted({f"{r.git_commit}{' (dirty)' if r.git_dirty else ''}" for r in records}),
        "versions": [json.loads(v) for v in distinct(r.versions for r in records)],
        "machines": [json.loads(v) for v in distinct(r.machine or {"device": r.device} for r in records)],
        "runs": len(records),
        "kept_from": str(sweep.resolve()),
        "kept_on": datetime.date.today().isoformat(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.analysis.keep", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="a sweep directory the aggregation has written into (--refresh: a "
                                          "kept sweep)")
    parser.add_argument("dest", nargs="?", help="where to keep it, e.g. docs/sweeps/NAME")
    parser.add_argument("--refresh", action="store_true", help="re-aggregate a kept sweep in place")
    args = parser.parse_args(argv)
    try:
        if args.refresh == (args.dest is not None):
            raise UserError("give SWEEP_DIR DEST to keep a sweep, or --refresh KEPT_DIR to re-aggregate one")
        dest = refresh_kept(Path(args.sweep_dir)) if args.refresh else keep_sweep(Path(args.sweep_dir),
                                                                                   Path(args.dest))
    except UserError as error:
        exit_with(error)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"re-aggregated {dest} ({size / 1e3:.0f} kB)" if args.refresh else
          f"kept {args.sweep_dir} in {dest} ({size / 1e3:.0f} kB); link its findings.md and methods.md "
          "from docs/sweeps/index.md and list the numbers the docs quote from it in docs/sweeps/quoted.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
