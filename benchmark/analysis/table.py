"""The generality curve as a LaTeX (booktabs) table."""
from __future__ import annotations

from pathlib import Path

from benchmark.analysis.curve import metric_label
from benchmark.analysis.export import write_text
from benchmark.analysis.findings import points_scale
from benchmark.analysis.stats import ci_half_width
from benchmark.protocol import SERIES, SERIES_BY_KEY, SOURCE_BASE

SIGNIFICANCE = 0.05
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def render_table(summary: dict) -> str:
    """Rows: base, then n = 1..; columns: the series present; cells mean +- CI half-width."""
    metric = summary["metric"]
    scale = points_scale(metric) or 1.0
    columns = [s for s in SERIES if s.key in summary["series"]]
    ns = sorted({int(n) for by_n in summary["series"].values() for n in by_n})
    headers = [s.latex for s in columns] or [""]  # keep the LaTeX valid without series
    blocks = summary.get("blocks", {})
    lines = [
        r"\begin{table}[t]", r"\centering", _caption(summary, scale), r"\label{tab:generality}",
        rf"\begin{{tabular}}{{rl{'c' * len(headers)}}}", r"\toprule",
        " & ".join(["$n$", "block", *headers]) + r" \\", r"\midrule",
        rf"base$B$ & & \multicolumn{{{len(headers)}}}{{c}}{{{_cell(summary['base'], scale)}}} \\",
    ]
    source = summary.get("source_base") or {"count": 0}
    if source["count"]:
        lines.append(rf"{SERIES_BY_KEY[SOURCE_BASE].latex} (source, on $A$) & & "
                     rf"\multicolumn{{{len(headers)}}}{{c}}{{{_cell(source, scale)}}} \\")
    lines.append(r"\midrule")
    lines += [" & ".join([str(n), latex_escape(blocks.get(str(n), "")),
                          *(_cell(summary["series"][s.key].get(str(n)), scale) for s in columns)])
              + r" \\" for n in ns]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(summary: dict, path: Path) -> Path:
    return write_text(path, render_table(summary))


def _cell(point: dict | None, scale: float) -> str:
    if not point or not point["count"]:
        return "--"
    digits = 1 if scale == 100.0 else 3
    half = ci_half_width(point)
    spread = "" if half is None else rf" \pm {half * scale:.{digits}f}"
    p = (point.get("vs_base") or {}).get("p_holm")
    star = "^{*}" if p is not None and p < SIGNIFICANCE else ""
    return f"${point['mean'] * scale:.{digits}f}{spread}{star}$"


def _caption(summary: dict, scale: float) -> str:
    counts = [p["count"] for by_n in summary["series"].values() for p in by_n.values()]
    counts.append(summary["base"]["count"])
    unit = r" (\%)" if scale == 100.0 else ""
    setting = "; ".join(f"{key} {', '.join(values)}" for key, values in summary["meta"].items() if values)
    text = (
        f"{latex_escape(metric_label(summary['metric']))}{unit} on the target task by the layer $n$ up to which "
        r"the network is copied, mean $\pm$ 95\% confidence half-width (Student $t$) over "
        f"{_span(min(counts), max(counts))} runs per cell; "
        rf"$^{{*}}$: differs from base$B$ (paired $t$-test on runs of the same seed and target, "
        rf"Welch's where runs do not pair; Holm-corrected across $n$; $p<{SIGNIFICANCE}$)."
    )
    if setting:
        text += f" Setting: {latex_escape(setting)}."
    return rf"\caption{{{text}}}"


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}--{high}"
