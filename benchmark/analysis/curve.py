"""The generality curve: accuracy per role and layer n, and the paper's derived quantities.

Both transfer directions are pooled, as in Yosinski et al. 2014: every run is
named by its role written with target-B names (a selffer net is ``BnB`` whether
it was BnB or AnA), and compared with the base net of its own target half.

The unit of replication is the split (experiment and seed): the two directions of one
split share the split and both base networks, so they are not independent. A run is
paired with the base of its own target half (``unit``), and the paired values of one
split's directions are averaged (``by_replicate``) before any mean, interval or test.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable

import numpy as np

from benchmark.analysis.stats import describe, holm, paired, welch_test
from benchmark.protocol import (BASE, BASES, HIGHEST, MEAN_HIGHEST, SELFFER, SERIES, SOURCE_BASE,
                                TRANSFER, TRANSFER_TUNED, series_of)
from benchmark.store.record import EXPERIMENT_FIELDS, RunRecord


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# quantity -> (left role, right role, combine(left value, right value), value of "no effect")
# on matched runs
DERIVED: dict[str, tuple[str, str, Callable[[float, float], float], float]] = {
    "generality": (TRANSFER, BASE, _ratio, 1.0),
    "coadaptation_loss": (BASE, SELFFER, operator.sub, 0.0),
    "specificity_loss": (SELFFER, TRANSFER, operator.sub, 0.0),
    "finetune_boost": (TRANSFER_TUNED, BASE, operator.sub, 0.0),
}

Table = dict[str, dict[int, list[tuple[tuple, float]]]]
HISTORY_METRIC = "val_top1"  # a run history's held-out top-1, at the epochs evaluated (train.eval_every)


def role(record: RunRecord) -> str:
    """The series a run belongs to (protocol.SERIES), written with target-B names."""
    return series_of(record.treatment, bool(record.finetune), bool(record.source_for)).key


def unit(record: RunRecord) -> tuple:
    """Runs are paired within a unit: same experiment, seed and target half."""
    return (*record.experiment(), record.seed, record.target)


def replicate(paired_unit: tuple) -> tuple:
    """The unit of replication a pairing unit belongs to: its split (experiment and seed),
    whichever direction (target half)."""
    return paired_unit[:-1]


def by_replicate(values: Iterable[tuple[tuple, float]]) -> dict[tuple, float]:
    """(unit, value) pairs averaged over the directions of each split: {replicate: mean}."""
    grouped: dict[tuple, list[float]] = {}
    for paired_unit, value in values:
        grouped.setdefault(replicate(paired_unit), []).append(value)
    return {key: float(np.mean(group)) for key, group in grouped.items()}


def paired_differences(table: Table, role_name: str, reference: str, n: int) -> dict[tuple, float]:
    """Per split: role - reference at layer n, each run paired with the reference run of its own
    target half, the directions of a split averaged."""
    ref = dict(lookup(table, reference, n))
    return by_replicate((u, value - ref[u]) for u, value in lookup(table, role_name, n) if u in ref)


def metric_value(record: RunRecord, metric: str) -> float | None:
    """The run's score: its final ``metrics[metric]``, or for MEAN_HIGHEST Yosinski et al.'s
    rule read off its history; a float, None when absent or not finite."""
    value = mean_highest(record.history) if metric == MEAN_HIGHEST else record.metric(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def evaluations(history: list[dict]) -> list[float]:
    """The held-out top-1 of each evaluated epoch of a run's history."""
    return [h[HISTORY_METRIC] for h in history if HISTORY_METRIC in h]


def mean_highest(history: list[dict]) -> float | None:
    """The mean of the HIGHEST best held-out top-1 evaluations (the paper's score of a network),
    None for a history with fewer evaluations."""
    values = sorted(evaluations(history), reverse=True)
    return float(np.mean(values[:HIGHEST])) if len(values) >= HIGHEST else None


def unscored_reason(record: RunRecord, metric: str) -> str:
    """Why a run has no score by ``metric``."""
    if not record.ok:
        return record.reason or f"status {record.status!r}"
    if metric == MEAN_HIGHEST:
        return (f"{len(evaluations(record.history))} held-out evaluations in its history, and "
                f"{MEAN_HIGHEST} is the mean of the {HIGHEST} best: train with train.eval_every=1 and "
                f"{HIGHEST} or more epochs")
    return f"status ok but metrics.{metric} is missing or not a finite number"


def is_usable(record: RunRecord, metric: str) -> bool:
    """A run counts when its status is "ok" and it has a finite ``metrics[metric]``."""
    return record.ok and metric_value(record, metric) is not None


def metric_label(metric: str) -> str:
    """Axis/caption wording for a metric name."""
    names = {"top1": "Top-1 accuracy", "top5": "Top-5 accuracy", "top1_best": "Best top-1 accuracy",
             MEAN_HIGHEST: f"Top-1 accuracy (mean of the {HIGHEST} best evaluations)"}
    return names.get(metric, metric)


def build_summary(results: Iterable[RunRecord], metric: str = "top1") -> dict:
    """The generality-curve summary (JSON-ready; n keys are strings) of a list of results.

    A run counts when its status is "ok" and it has a finite ``metrics[metric]``;
    every other run is listed under "failed" with its reason.
    """
    usable: list[RunRecord] = []
    failed: list[RunRecord] = []
    for result in results:
        (usable if is_usable(result, metric) else failed).append(result)
    results = usable + failed
    table = role_table(usable, metric)
    base_values = list(by_replicate(lookup(table, BASE, 0)).values())
    ns = sorted({n for name, by_n in table.items() if name not in BASES for n in by_n})
    return {
        "metric": metric,
        "base": describe(base_values),
        "source_base": describe(list(by_replicate(lookup(table, SOURCE_BASE, 0)).values())),
        "series": {s.key: _series_points(table, s.key, base_values)
                   for s in SERIES if s.key not in BASES and s.key in table},
        "blocks": layer_names(results),
        "derived": {
            quantity: _with_holm({str(n): _derived_point(table, left, right, combine, null, n) for n in ns})
            for quantity, (left, right, combine, null) in DERIVED.items()
        },
        "runs": {"total": len(results), "ok": len(usable), "failed": len(failed)},
        "failed": [_failure(r, metric) for r in failed],
        "wall_s_total": sum(r.wall_s or 0.0 for r in results),
        "meta": {key: sorted({str(getattr(r, key)) for r in results if getattr(r, key) is not None})
                 for key in EXPERIMENT_FIELDS},
    }


def layer_names(results: Iterable[RunRecord]) -> dict[str, str]:
    """The block name of each layer n of the runs (``"3": "conv3"``); models pooled in one
    curve that name a layer differently give ``"conv3 / layer3"``."""
    names: dict[int, list[str]] = {}
    for result in results:
        for n, name in enumerate(result.blocks or [], start=1):
            if name not in names.setdefault(n, []):
                names[n].append(name)
    return {str(n): " / ".join(names[n]) for n in sorted(names)}


def pooled_settings(summary: dict) -> dict[str, list[str]]:
    """Settings (dataset, split, model, target data) of which the curve mixes several values."""
    return {key: values for key, values in summary["meta"].items() if len(values) > 1}


def curve_rows(summary: dict) -> list[dict]:
    """The curve in long format (one row per series and n, base at n = 0), e.g. for a wandb.Table."""
    points = [(BASE, "0", summary["base"])]
    if summary["source_base"]["count"]:
        points.append((SOURCE_BASE, "0", summary["source_base"]))
    points += [(name, n, point) for name, by_n in summary["series"].items() for n, point in by_n.items()]
    return [
        {"series": name, "n": int(n), "mean": p["mean"], "std": p["std"], "count": p["count"],
         "ci_low": p["ci95"][0] if p["ci95"] else None, "ci_high": p["ci95"][1] if p["ci95"] else None,
         "p_vs_base": p.get("p_vs_base")}
        for name, n, p in points
    ]


def role_table(usable: Iterable[RunRecord], metric: str) -> Table:
    """{role: {n: [(unit, value), ...]}} of usable runs (base roles at n = 0)."""
    table: Table = {}
    for result in usable:
        name = role(result)
        n = 0 if name in BASES else result.n
        table.setdefault(name, {}).setdefault(n, []).append((unit(result), metric_value(result, metric)))
    return table


def lookup(table: Table, name: str, n: int) -> list[tuple[tuple, float]]:
    """(unit, value) pairs of a role at layer n; the base is the same at every n."""
    return table.get(name, {}).get(0 if name in BASES else n, [])


def _series_points(table: Table, name: str, base_values: list[float]) -> dict[str, dict]:
    """Each n of a series, compared with the base (Holm-corrected across n)."""
    return _with_holm({str(n): _series_point(table, name, n, base_values) for n in sorted(table[name])})


def _series_point(table: Table, name: str, n: int, base_values: list[float]) -> dict:
    """Describe a cell (per split); compare it with the base: paired t on the per-split
    differences when its runs pair with base runs (same seed and target), Welch otherwise
    (``vs_base``: the difference, its CI and p; ``p_vs_base``: that p)."""
    values = list(by_replicate(lookup(table, name, n)).values())
    differences = list(paired_differences(table, name, BASE, n).values())
    if len(differences) >= 2:
        comparison = {**paired(differences), "test": "paired t"}
    else:
        comparison = {**welch_test(values, base_values), "test": "Welch"}
    comparison.pop("values", None)
    return {**describe(values), "p_vs_base": comparison["p"], "vs_base": comparison}


def _with_holm(points: dict[str, dict]) -> dict[str, dict]:
    """Add ``p_holm``: each point's p (``vs_base`` or its own) Holm-adjusted across the points."""
    tests = [point.get("vs_base", point) for point in points.values()]
    for test, adjusted in zip(tests, holm([test.get("p") for test in tests])):
        test["p_holm"] = adjusted
    return points


def _derived_point(table: Table, left: str, right: str,
                   combine: Callable[[float, float], float], null: float, n: int) -> dict:
    """Combine the runs of two roles that share a unit, average per split, paired t-test against
    ``null``; count the non-base runs left unmatched."""
    sides = {left: dict(lookup(table, left, n)), right: dict(lookup(table, right, n))}
    a, b = sides[left], sides[right]
    values = by_replicate((u, combine(a[u], b[u])) for u in a if u in b and math.isfinite(combine(a[u], b[u])))
    unmatched = sum(len(side.keys() - other.keys())
                    for name, side, other in ((left, a, b), (right, b, a)) if name != BASE)
    return {**paired(list(values.values()), null), "unmatched": unmatched}


def _failure(record: RunRecord, metric: str) -> dict:
    reason = record.reason or unscored_reason(record, metric)
    return {"label": record.label, "seed": record.seed, "target": record.target, "reason": reason,
            "path": record.path}
