"""The findings as a short Markdown table: printed at the end of a sweep, written to
findings.md beside the figure, logged to W&B."""
from __future__ import annotations

from pathlib import Path

from benchmark.analysis.export import write_text
from benchmark.protocol import INCONCLUSIVE

COLUMNS = ("#", "finding", "layers n", "test", "estimate [95% CI] (points)", "p (its test)", "verdict")


def render_findings(summary: dict, title: str = "Findings of Yosinski et al. 2014 on this sweep") -> str:
    """Header (setting, regime, sanity warnings), the table, then each finding's details."""
    block = summary["findings"]
    lines = [f"# {title}", "", findings_text(summary)]
    if block.get("skipped"):
        return "\n".join(lines) + "\n"
    lines += ["", "Details:", ""]
    for finding in block["findings"]:
        lines.append(f"{finding['id']}. {finding['detail']}.")
        if finding["missing"]:
            lines.append(f"   Missing: {'; '.join(finding['missing'])}.")
        for reason in finding.get("provisional", []):
            lines.append(f"   Provisional: {reason}.")
    return "\n".join(lines) + "\n"


def findings_text(summary: dict) -> str:
    """Setting, regime, sanity warnings and the findings table (printed at the end of a sweep)."""
    block = summary["findings"]
    lines = []
    setting = "; ".join(f"{key} {', '.join(values)}" for key, values in summary["meta"].items() if values)
    lines += [f"Setting: {setting}. Metric: {summary['metric']}.",
              f"Regime: {summary['sanity']['regime']}.", ""]
    lines += [f"**Warning:** {warning}" for warning in summary["sanity"]["warnings"]]
    if block.get("skipped"):
        return "\n".join([*lines, f"No findings tested: {block['skipped']}."])
    note = [f"**{block['note']}**", ""] if block.get("note") else []
    return "\n".join([*lines, "", *note, findings_rows(block["findings"]), "", block["stopping"]])


def findings_rows(findings: list[dict]) -> str:
    """The table alone (one row per finding)."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS)]
    rows += [(str(f["id"]), f["statement"], _layers(f["layers"]), f["test"], _estimate(f), _p(f),
              verdict_text(f)) for f in findings]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def verdict_grid(labels: list[str], summaries: list[dict]) -> str:
    """Several sweeps' verdicts side by side: one row per sweep (its label, baseB with its 95% CI,
    then each finding's verdict and headline estimate), as docs/validation.md compares recipes and
    worlds."""
    ids = [f["id"] for f in summaries[0]["findings"]["findings"]]
    rows = [("sweep", "baseB (%)", *(f"finding {i}" for i in ids)), ("---",) * (len(ids) + 2)]
    for label, summary in zip(labels, summaries):
        base = summary["base"]
        level = format_interval(100 * base["mean"], [100 * c for c in base["ci95"]] if base.get("ci95") else None)
        rows.append((label, level.replace("+", ""), *map(_grid_cell, summary["findings"]["findings"])))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _grid_cell(finding: dict) -> str:
    """``holds (n=1: +0.90)``; an inconclusive verdict with the region it leans towards."""
    towards = (finding.get("decision") or {}).get("towards")
    label = verdict_label(finding) + (f", towards {towards}" if towards else "")
    if finding["estimate"] is None:
        return label
    estimate = format_interval(finding["estimate"], None)
    return f"{label} ({finding['row']}: {estimate})" if finding.get("row") else f"{label} ({estimate})"


def verdict_label(finding: dict) -> str:
    """The verdict, marked provisional where a sanity check says so."""
    return finding["verdict"] + (" (provisional)" if finding.get("provisional") else "")


def verdict_text(finding: dict) -> str:
    """:func:`verdict_label`; an inconclusive one with the seeds that would decide it."""
    provisional = " (provisional)" if finding.get("provisional") else ""
    if finding["verdict"] != INCONCLUSIVE:
        return verdict_label(finding)
    decision = finding.get("decision")
    if not decision or not decision.get("towards"):
        return f"{INCONCLUSIVE}{provisional} (the estimate lies on a bound: no number of seeds decides it)"
    if decision["range"][0] is None:
        return (f"{INCONCLUSIVE}{provisional} (towards {decision['towards']}: over {decision['limit']} seeds at "
                "the estimate and across its 95% CI)")
    low, high = (_seeds(units, decision["limit"]) for units in decision["range"])
    return (f"{INCONCLUSIVE}{provisional} (towards {decision['towards']}: "
            f"{_seeds(decision['seeds'], decision['limit'])} seeds at the estimate, {low} to {high} across "
            f"its 95% CI)")


def _seeds(units: int | None, limit: int) -> str:
    return f"over {limit}" if units is None else f"about {units}"


def _p(finding: dict) -> str:
    return format_p(finding["p"]) + (f" ({finding['p_test']})" if finding.get("p_test") else "")


def write_findings(summary: dict, path: Path) -> Path:
    return write_text(path, render_findings(summary))


def _layers(layers: list[int]) -> str:
    if not layers:
        return "--"
    contiguous = layers == list(range(layers[0], layers[-1] + 1))
    return f"{layers[0]}-{layers[-1]}" if contiguous and len(layers) > 1 else ", ".join(map(str, layers))


def _estimate(finding: dict) -> str:
    interval = format_interval(finding["estimate"], finding["ci95"])
    return f"{finding['row']}: {interval}" if finding.get("row") else interval


def format_interval(mean: float | None, ci: list[float] | None) -> str:
    """``+1.23 [+0.50, +1.96]`` (points), ``--`` when undefined."""
    if mean is None:
        return "--"
    return f"{mean:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def format_p(p: float | None) -> str:
    return "--" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")
