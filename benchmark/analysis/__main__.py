"""``python -m benchmark.analysis SWEEP_DIR [--reference yosinski2014] [--metric top1]``."""
from __future__ import annotations

import argparse
import sys

from benchmark.analysis import AnalysisError, Report, aggregate, pooled_settings
from benchmark.analysis.reference import available
from benchmark.errors import exit_with


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = aggregate(args.sweep_dir, reference=args.reference, metric=args.metric)
    except AnalysisError as exc:
        exit_with(exc)
    _print_report(report)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.analysis",
        description="Aggregate a sweep's result.json files into results.csv, summary.json, "
                    "generality.png/.pdf and table.tex, written into the sweep directory.")
    parser.add_argument("sweep_dir", help="directory searched recursively for result.json")
    parser.add_argument("--reference", help=f"overlay published numbers: {', '.join(available())}")
    parser.add_argument("--metric", default="top1", help="final metric to aggregate (default: top1)")
    return parser


def _print_report(report: Report) -> None:
    summary, runs = report.summary, report.summary["runs"]
    print(f"aggregated {runs['total']} runs: {runs['ok']} ok, {runs['failed']} failed, "
          f"{runs['duplicates']} older duplicates ignored")
    for kind, path in report.paths.items():
        print(f"  {kind:<8} {path}")
    pooled = pooled_settings(summary)
    if pooled:
        print(f"warning: the curve pools several settings: {pooled}", file=sys.stderr)
    if summary["failed"]:
        print("failed runs:")
        for run in summary["failed"]:
            print(f"  {run['label']} seed={run['seed']} target={run['target']}: {run['reason']} "
                  f"({run['path']})")
    if summary["problems"]:
        print("unreadable result.json files:")
        for problem in summary["problems"]:
            print(f"  {problem['path']}: {problem['error']}")


if __name__ == "__main__":
    sys.exit(main())
