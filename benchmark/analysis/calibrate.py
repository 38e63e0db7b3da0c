"""``python -m benchmark.analysis.calibrate [--sims N] [--seed S] [--findings 1,2] [--seeds 2,3,5,10]
[--config FILE.yaml] [--set analysis.KEY=VALUE ...] [--out FILE.md]``: the findings' measured error rates.

For each finding, number of seeds and true effect (a multiple of the finding's margin), it
simulates sweeps with that effect (benchmark/analysis/simulate.py; conf/calibration/default.yaml),
judges each with the real verdict code (:func:`test_findings`) and counts the verdicts. A verdict
is wrong when it claims what the true effect is not (:func:`right_verdicts`); inconclusive and
not enough runs claim nothing and are never wrong. Every cell where a wrong verdict is more
frequent than alpha is named. Writes FILE.md and FILE.json and prints the table.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from scipy.stats import binomtest
from tqdm import tqdm

from benchmark.analysis import default_findings
from benchmark.analysis.export import write_json, write_text
from benchmark.analysis.findings import findings_settings, test_findings
from benchmark.analysis.simulate import Effects, simulate_sweep
from benchmark.config import CONFIG_DIR
from benchmark.errors import UserError, exit_with
from benchmark.protocol import (CONTRADICTED, HOLDS, NOT_ENOUGH_RUNS, RANDOM_CONTROL, SELFFER,
                                SELFFER_TUNED, SMALL, TRANSFER, TRANSFER_TUNED, VERDICTS)
from benchmark.schema import validate
from benchmark.schema.analysis import FindingsSettings
from benchmark.schema.calibration import Calibration
from benchmark.schema.split import RANDOM_SPLIT

DEFAULT_CONFIG = Path(CONFIG_DIR) / "calibration" / "default.yaml"
METRIC = "top1"
OUTCOMES = (*VERDICTS, NOT_ENOUGH_RUNS)
CLAIMS = (HOLDS, SMALL, CONTRADICTED)  # the verdicts that claim something about the effect
THREE_REGIONS, EQUIVALENCE = "three regions", "equivalence"


@dataclass(frozen=True)
class Finding:
    """What the calibration varies for a finding: its :class:`Effects` field, the setting of
    ``analysis.findings`` that is its margin, the kind of its verdict regions, and the roles its
    test reads (a simulated sweep runs only those and baseB)."""

    effect: str
    margin: str
    kind: str
    reads: tuple[str, ...]
    two_splits: bool = False


FINDINGS = {
    1: Finding("fall", "near_points", THREE_REGIONS, (TRANSFER,)),
    2: Finding("dip", "dip_points", THREE_REGIONS, (SELFFER,)),
    3: Finding("tuned_selffer", "same_points", EQUIVALENCE, (SELFFER_TUNED,)),
    4: Finding("boost", "boost_points", THREE_REGIONS, (TRANSFER_TUNED, SELFFER_TUNED)),
    5: Finding("gap", "gap_points", THREE_REGIONS, (TRANSFER,), two_splits=True),
    6: Finding("far", "far_points", THREE_REGIONS, (TRANSFER, RANDOM_CONTROL)),
}


def right_verdicts(kind: str, multiple: float, negligible: float) -> tuple[str, ...]:
    """The verdicts that are right for a true effect of ``multiple`` times the finding's margin.

    Three regions (findings 1, 2, 4, 5, 6): under ``negligible`` x margin the effect counts as
    none (contradicted), between that and the margin it is real but small, beyond the margin the
    finding holds. Equivalence (finding 3: BnB+ within +-margin of baseB): within the margin it
    holds, beyond it it is contradicted. An effect exactly on a boundary lies in both regions
    beside it: either verdict is right (and, as everywhere, inconclusive claims nothing)."""
    regions = ([(negligible, CONTRADICTED, SMALL), (1.0, SMALL, HOLDS)] if kind == THREE_REGIONS
               else [(1.0, HOLDS, CONTRADICTED)])
    for boundary, below, above in regions:
        if multiple == boundary:
            return below, above
        if multiple < boundary:
            return (below,)
    return (regions[-1][2],)


@dataclass
class Cell:
    """One cell of the table: a finding at a number of seeds and a true effect, judged ``sims``
    times; ``counts`` of each outcome, ``right``: the verdicts that are right there."""

    finding: int
    multiple: float
    effect_points: float
    seeds: int
    sims: int
    counts: dict[str, int]
    right: tuple[str, ...]

    def rate(self, outcome: str) -> tuple[float, float, float]:
        """The outcome's rate and its 95% (Wilson) interval."""
        k = self.counts.get(outcome, 0)
        interval = binomtest(k, self.sims).proportion_ci(method="wilson")
        return k / self.sims, float(interval.low), float(interval.high)

    def wrong(self) -> list[str]:
        """The verdicts that came out where they are wrong."""
        return [v for v in CLAIMS if v not in self.right and self.counts.get(v)]

    def misses(self, alpha: float) -> list[str]:
        """The wrong verdicts more frequent than alpha."""
        return [v for v in self.wrong() if self.rate(v)[0] > alpha]


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The calibration settings (default: conf/calibration/default.yaml), checked."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        node = OmegaConf.merge(OmegaConf.structured(Calibration), OmegaConf.load(path))
    except FileNotFoundError:
        raise UserError(f"--config {path} does not exist; pass a calibration file such as "
                        f"{DEFAULT_CONFIG}") from None
    except OmegaConfBaseException as error:
        raise UserError(f"--config {path}: {error}".splitlines()[0] + "; compare it with "
                        f"{DEFAULT_CONFIG}") from None
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        raise UserError(f"--config {path} lacks {', '.join(missing)}; give every key of {DEFAULT_CONFIG}")
    validate(node, "calibration.")
    return OmegaConf.to_object(node)


def fixed_effects(config: Calibration) -> Effects:
    return Effects(**asdict(config.fixed))


def simulate_cell(number: int, multiple: float, seeds: int, config: Calibration, settings: FindingsSettings,
                  sims: int, rng: np.random.Generator, progress: tqdm | None = None) -> Cell:
    """Judge ``sims`` simulated sweeps of finding ``number`` at ``multiple`` x its margin."""
    finding = FINDINGS[number]
    points = multiple * getattr(settings, finding.margin)
    effects = replace(fixed_effects(config), **{finding.effect: points})
    splits = (RANDOM_SPLIT, config.dissimilar_split) if finding.two_splits else (RANDOM_SPLIT,)
    counts = Counter({outcome: 0 for outcome in OUTCOMES})
    for _ in range(sims):
        records = simulate_sweep(effects, seeds, config.noise, rng, settings, config.blocks, config.targets,
                                 splits, finding.reads)
        found = {f["id"]: f for f in test_findings(records, METRIC, settings)["findings"]}
        counts[found[number]["verdict"]] += 1
        if progress is not None:
            progress.update()
    right = right_verdicts(finding.kind, multiple, settings.negligible)
    return Cell(number, multiple, points, seeds, sims, dict(counts), right)


def calibrate(config: Calibration, settings: FindingsSettings, findings: Sequence[int], seed: int,
              progress: bool = True) -> list[Cell]:
    """Every cell of ``findings`` x config.seeds x config.effects, each from its own random stream
    (``seed`` and the cell), so a cell's numbers do not depend on which others are run."""
    grid = [(f, s, m) for f in findings for s in config.seeds for m in config.effects]
    with tqdm(total=len(grid) * config.sims, desc="simulated sweeps", unit="sweep", disable=not progress,
              file=sys.stderr) as bar:
        return [simulate_cell(f, m, s, config, settings, config.sims,
                              np.random.default_rng([seed, f, s, round(m * 1000)]), bar) for f, s, m in grid]


def _percent(rate: tuple[float, float, float]) -> str:
    value, low, high = (100 * x for x in rate)
    return f"{value:.0f}% [{low:.0f}, {high:.0f}]"


def _multiple(multiple: float) -> str:
    return {0.0: "0", 0.5: "margin/2", 1.0: "margin", 2.0: "2 x margin"}.get(multiple, f"{multiple:g} x margin")


def _outcome(cell: Cell, outcome: str) -> str:
    count = cell.counts.get(outcome, 0)
    text = f"{count}: {_percent(cell.rate(outcome))}" if count else "0"
    return f"**{text}**" if outcome in cell.wrong() else text


def _right(cell: Cell) -> str:
    return " or ".join(cell.right) + (" (on the margin)" if len(cell.right) > 1 else "")


def cell_miss(cell: Cell, alpha: float) -> str:
    """Why a cell misses the target: each wrong verdict above alpha, its rate and interval."""
    parts = []
    for verdict in cell.misses(alpha):
        rate = cell.rate(verdict)
        certainty = ("above alpha beyond Monte Carlo error" if rate[1] > alpha
                     else "within Monte Carlo error of alpha")
        parts.append(f"wrong {verdict} {_percent(rate)} ({cell.counts[verdict]} of {cell.sims}), {certainty}")
    return (f"finding {cell.finding}, {cell.seeds} seeds, true effect {_multiple(cell.multiple)} "
            f"({cell.effect_points:g} points; right: {_right(cell)}): " + "; ".join(parts))


def render(cells: list[Cell], settings: FindingsSettings, header: str) -> str:
    """The Markdown report: per finding a table of every verdict's count and rate (95% interval)
    at each number of seeds and effect, wrong verdicts in bold, then the cells that miss."""
    lines = [header, ""]
    outcomes = [*OUTCOMES, *sorted({o for c in cells for o in c.counts} - set(OUTCOMES))]  # a new verdict too
    for number in sorted({c.finding for c in cells}):
        finding = FINDINGS[number]
        lines += [f"### Finding {number} ({finding.kind}; margin {finding.margin} = "
                  f"{getattr(settings, finding.margin):g} points)", "",
                  "| true effect | points | seeds | right | " + " | ".join(outcomes) + " | sims |",
                  "|---|---|---|---|" + "---|" * len(outcomes) + "---|"]
        for cell in (c for c in cells if c.finding == number):
            cells_text = [_multiple(cell.multiple), f"{cell.effect_points:g}", str(cell.seeds), _right(cell),
                          *(_outcome(cell, o) for o in outcomes), str(cell.sims)]
            lines.append("| " + " | ".join(cells_text) + " |")
        lines.append("")
    missed = [cell_miss(c, settings.alpha) for c in cells if c.misses(settings.alpha)]
    lines += [f"**Cells where a wrong verdict is more frequent than alpha = {settings.alpha:g}**: "
              f"{len(missed)} of {len(cells)}", ""] + [f"- {m}" for m in missed]
    return "\n".join(lines) + "\n"


def _header(config: Calibration, seed: int, calls: int, seconds: float, cpu: float) -> str:
    noise = config.noise
    return (f"Each cell: {config.sims} simulated sweeps (seed {seed}), each judged by test_findings; count: "
            f"rate [95% Wilson interval]; wrong verdicts in bold; right: the verdicts the true effect "
            f"calls for. Noise (points): level {noise.level:g}, seed sd {noise.seed_sd:g}, network sd "
            f"{noise.network_sd:g}, random frozen network sd {noise.random_network_sd:g}; targets "
            f"{', '.join(config.targets)}; L = {len(config.blocks)}. {calls} sweeps simulated and judged in "
            f"{seconds:.0f} s ({cpu:.0f} s of CPU: {1000 * cpu / max(calls, 1):.0f} ms a sweep).")


def _numbers(text: str, option: str, low: int, rule: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < low:
        raise UserError(f"{option} {text}: {rule}")
    return values


def _findings(text: str) -> list[int]:
    known = ", ".join(map(str, FINDINGS))
    numbers = _numbers(text, "--findings", 1, f"give finding numbers among {known}, e.g. 2 or 1,4")
    unknown = [n for n in numbers if n not in FINDINGS]
    if unknown:
        raise UserError(f"--findings {text}: finding {unknown[0]} is unknown; give numbers among {known}")
    return numbers


def _options(args: argparse.Namespace) -> tuple[Calibration, FindingsSettings, list[int], int, Path]:
    """The config (with --sims and --seeds), the analysis settings, the findings, the seed and
    the output file; :class:`UserError` for a bad one."""
    config = load_calibration(args.config)
    if args.sims is not None:
        config.sims = _numbers(args.sims, "--sims", 1, "give a whole number of simulated sweeps, 1 or more")[0]
    if args.seeds is not None:
        config.seeds = _numbers(args.seeds, "--seeds", 2, "give seed counts of 2 or more, e.g. 2,3,5,10")
    seed = _numbers(args.seed, "--seed", 0, "give a whole number, 0 or more")[0]
    findings = _findings(args.findings)
    settings = findings_settings(default_findings(args.set))
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist; create it or write elsewhere")
    return config, settings, findings, seed, out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.analysis.calibrate",
        description="Measure the findings' error rates: simulate sweeps with known effects "
                    "(conf/calibration/default.yaml), judge them with the real verdict code, and "
                    "tabulate how often each verdict comes out; name every cell where a wrong "
                    "verdict is more frequent than alpha.")
    parser.add_argument("--sims", help="simulated sweeps per cell (default: the config's sims)")
    parser.add_argument("--seed", default="0", help="random seed of the simulation (default 0)")
    parser.add_argument("--findings", default=",".join(map(str, FINDINGS)),
                        help="the findings to calibrate, e.g. 2 or 1,4 (default: all six)")
    parser.add_argument("--seeds", help="the seeds a simulated sweep has, e.g. 3 or 2,3,5,10 "
                                        "(default: the config's)")
    parser.add_argument("--config", help=f"calibration settings (default: {DEFAULT_CONFIG})")
    parser.add_argument("--set", action="append", default=[], metavar="analysis.KEY=VALUE",
                        help="override a setting of the analysis, e.g. analysis.findings.alpha=0.01")
    parser.add_argument("--out", default="calibration.md",
                        help="the Markdown table to write (default calibration.md); its JSON goes beside it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config, settings, findings, seed, out = _options(args)
    except UserError as exc:
        exit_with(exc)
    start, cpu = time.perf_counter(), time.process_time()
    cells = calibrate(config, settings, findings, seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    text = render(cells, settings, _header(config, seed, sum(c.sims for c in cells), seconds, cpu))
    write_text(out, text)
    cells_json = [asdict(c) | {"wrong_above_alpha": c.misses(settings.alpha)} for c in cells]
    write_json({"seed": seed, "seconds": seconds, "cpu_seconds": cpu, "config": asdict(config),
                "settings": asdict(settings), "cells": cells_json}, out.with_suffix(".json"))
    print(text)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
