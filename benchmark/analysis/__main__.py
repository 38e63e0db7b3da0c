"""``python -m benchmark.analysis SWEEP_DIR [SWEEP_DIR ...] [--reference yosinski2014] [--metric top1]
[--set analysis.KEY=VALUE ...] [--out DIR]``.

One directory: its reports and findings. Several: each one's reports, then their curves on
one figure and finding 5 across them (comparison.png / .pdf / .md in ``--out``), and the readouts
they took scored across them against the nulls (cheap_answer.md / .json / .png / .pdf)."""
from __future__ import annotations

import argparse
import sys

from pathlib import Path

from omegaconf import DictConfig

from benchmark.analysis import (Report, aggregate, compare_sweeps, default_analysis, default_findings,
                                findings_text, pooled_settings, run_findings)
from benchmark.analysis.collect import collect
from benchmark.analysis.findings import findings_settings, regions_table
from benchmark.errors import UserError, exit_with
from benchmark.protocol import HIGHEST, MEAN_HIGHEST, METRICS
from benchmark.reference import available
from benchmark.sweep.later import complete


FINDINGS_KEYS = "analysis.findings."


def _sweep_findings(sweep_dir: str, analysis: DictConfig, overrides: list[str]) -> dict:
    """The settings the sweep's runs were run with, the ``--set analysis.findings.KEY`` ones on top."""
    given = [o.split("=", 1)[0].removeprefix(FINDINGS_KEYS) for o in overrides if o.startswith(FINDINGS_KEYS)]
    runs = collect(Path(sweep_dir)).results if Path(sweep_dir).is_dir() else []  # aggregate() says it is missing
    return run_findings(runs, {key: analysis.findings[key] for key in given})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(rules=bool({"-h", "--help"} & set(argv))).parse_args(argv)
    try:
        analysis = default_analysis(args.set)
        findings = [_sweep_findings(d, analysis, args.set) for d in args.sweep_dirs]
        reports = [aggregate(d, reference=args.reference, metric=args.metric, findings=own,
                             analysis=analysis, complete=complete) for d, own in zip(args.sweep_dirs, findings)]
        for report in reports:
            _print_report(report)
        if len(reports) > 1:
            _print_comparison(compare_sweeps(args.sweep_dirs, args.out, args.metric, findings,
                                             [r.summary for r in reports], analysis))
    except UserError as exc:
        exit_with(exc)
    return 0


def _parser(rules: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.analysis",
        description="Aggregate a sweep's result.json files into results.csv, summary.json, "
                    "generality.png/.pdf and table.tex, written into the sweep directory.",
        epilog=_verdict_rules() if rules else None, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dirs", nargs="+", metavar="sweep_dir",
                        help="directory searched recursively for result.json; several: compare them")
    parser.add_argument("--reference", help=f"overlay published numbers: {', '.join(available())}")
    parser.add_argument("--metric", default="top1",
                        help=f"what each network is scored by: {', '.join(METRICS)} (default: top1); "
                             f"{MEAN_HIGHEST}: the paper's rule, the mean of its {HIGHEST} best held-out "
                             "evaluations")
    parser.add_argument("--set", action="append", default=[], metavar="analysis.KEY=VALUE",
                        help="override a setting of the analysis (conf/config.yaml), repeatable: the "
                             "findings' thresholds (analysis.findings.alpha=0.01), the measures to "
                             "take where runs lack them (analysis.measures=[cka])")
    parser.add_argument("--out", help="where a comparison of several sweeps goes "
                                      "(default: DIR/comparison, DIR their common parent)")
    return parser


def _verdict_rules() -> str:
    """The findings' verdict regions at the configured margins (composing the config takes a
    second: only for --help)."""
    return ("how each finding's verdict is reached (analysis.findings.* in conf/config.yaml):\n\n"
            + regions_table(findings_settings(default_findings())))


def _print_comparison(paths: dict) -> None:
    print("comparison of the sweeps:")
    for kind, path in paths.items():
        print(f"  {kind:<8} {path}")
    print(paths["markdown"].read_text())
    if "cheap_answer_md" in paths:
        print(paths["cheap_answer_md"].read_text())


def _print_report(report: Report) -> None:
    summary, runs = report.summary, report.summary["runs"]
    print(f"aggregated {runs['total']} runs: {runs['ok']} ok, {runs['failed']} failed, "
          f"{runs['duplicates']} older duplicates ignored")
    for kind, path in report.paths.items():
        print(f"  {kind:<8} {path}")
    print(findings_text(summary))
    if "measures" in report.paths:
        print(report.paths["measures"].read_text())
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
