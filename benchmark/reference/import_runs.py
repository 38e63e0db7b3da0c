"""``python -m benchmark.reference.import_runs OUT_DIR [--history PATH] [--partial]``: the paper's
own networks (Yosinski et al. 2014's validation histories) as run records, one sweep directory
per class split under OUT_DIR, for the ordinary aggregation (benchmark/reference/paper_runs.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import UserError, exit_with
from benchmark.protocol import MEAN_HIGHEST
from benchmark.reference.paper_runs import DEFAULT_HISTORY, Imported, import_paper_runs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        imported = import_paper_runs(Path(args.out_dir), Path(args.history), args.partial)
    except UserError as exc:
        exit_with(exc)
    _print_imported(imported)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.reference.import_runs",
        description="Import the validation histories of Yosinski et al. 2014's networks as run records "
                    "(OUT_DIR/yosinski2014-<split>/<network>/result.json), to aggregate like a sweep.")
    parser.add_argument("out_dir", help="where the sweep directories go (records already there are kept)")
    parser.add_argument("--history", default=str(DEFAULT_HISTORY),
                        help=f"the paper's validation_history.csv.gz (default: {DEFAULT_HISTORY})")
    parser.add_argument("--partial", action="store_true",
                        help="the file holds some of the paper's networks only (each with its bases)")
    return parser


def _print_imported(imported: Imported) -> None:
    history = imported.history
    print(f"imported {len(history.networks)} networks of {history.path} (sha256 {history.sha256[:12]}): "
          f"{imported.written} records written, {imported.already} already there")
    if history.left_out:
        print(f"left out {len(history.left_out)} networks that are no point of the protocol "
              f"(reduced-data, 1000 classes): {', '.join(sorted(history.left_out))}")
    for sweep in imported.sweeps:
        print(f"  {sweep}: python -m benchmark.analysis {sweep} --metric {MEAN_HIGHEST}")


if __name__ == "__main__":
    sys.exit(main())
