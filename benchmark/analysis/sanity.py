"""Checks a reviewer asks for before reading the findings: are the base networks trained
to the end, and do the halves hold the same amount of training data?

An under-trained base makes the curve something else than the paper's: re-training the
upper layers (BnB at the lowest n) then beats the base itself. Halves with different
amounts of training data put the sweep in the small-target-data regime, where transfer
can beat the base at every n.
"""
from __future__ import annotations

from collections.abc import Iterable

from benchmark.analysis.curve import HISTORY_METRIC, is_usable, lookup, role_table
from benchmark.analysis.findings import FindingsSettings, points_scale
from benchmark.analysis.stats import paired
from benchmark.protocol import BASE, SELFFER, TREATMENTS
from benchmark.store.record import RunRecord


def sanity_checks(results: Iterable[RunRecord], metric: str, settings: FindingsSettings) -> dict:
    """``{"regime": str, "warnings": [str, ...]}`` for the usable runs of a sweep."""
    results = [r for r in results if is_usable(r, metric)]
    warnings = [*_still_improving(results, settings), *_selffer_beats_base(results, metric, settings)]
    return {"regime": regime(results), "warnings": warnings}


def regime(results: list[RunRecord]) -> str:
    """The data regime of the sweep: equal halves, or which setting makes them differ."""
    limits = [f"data.{key}={value}" for key in ("train_per_class", "target_fraction")
              for value in sorted({getattr(r, key) for r in results if getattr(r, key) is not None})]
    sizes = sorted({(len(r.classes_A or []), len(r.classes_B or [])) for r in results
                    if r.classes_A is not None})
    unequal = [f"{a} vs {b} classes in A and B" for a, b in sizes if a != b and a and b]
    if limits or unequal:
        return ("halves with different amounts of training data (" + "; ".join(limits + unequal)
                + "): the small-target-data regime, where transfer can beat the base at every n")
    return "halves of equal size and training data (the paper's regime)"


def _still_improving(results: list[RunRecord], s: FindingsSettings) -> list[str]:
    """Base networks whose best accuracy of their last ``tail_epochs`` epochs beats their best
    before by ``improving_points`` or more (read at the epochs evaluated: ``train.eval_every``)."""
    flagged = []
    for result in results:
        history = result.history or []
        if not TREATMENTS[result.treatment].is_base or not history:
            continue
        start = history[-1]["epoch"] - s.tail_epochs  # the tail is the epochs after this one
        curve = [(h["epoch"], h[HISTORY_METRIC]) for h in history if HISTORY_METRIC in h]
        tail = [value for epoch, value in curve if epoch > start]
        before = [value for epoch, value in curve if epoch <= start]
        if not (tail and before):
            continue
        gain = 100.0 * (max(tail) - max(before))
        if gain >= s.improving_points:
            flagged.append(f"{result.label} seed {result.seed}: +{gain:.1f} points")
    if not flagged:
        return []
    return [f"base networks still improving in their last {s.tail_epochs} epochs ({', '.join(flagged)}): "
            "they are under-trained and the curve is not yet the paper's; train longer "
            "(train.epochs=...) in a new sweep directory"]


def _selffer_beats_base(results: list[RunRecord], metric: str, s: FindingsSettings) -> list[str]:
    """BnB at the lowest n shown above baseB by more than ``above_points``: re-training the upper
    layers beat the base by more than a base on its plateau may still gain."""
    scale = points_scale(metric)
    table = role_table(results, metric)
    ns = sorted(table.get(SELFFER, {}))
    if scale is None or not ns:
        return []
    base = dict(lookup(table, BASE, 0))
    diffs = [(v - base[u]) * scale for u, v in lookup(table, SELFFER, ns[0]) if u in base]
    test = paired(diffs, s.above_points, "greater")
    if test["p"] is None or test["p"] >= s.alpha:
        return []
    return [f"BnB at n={ns[0]} is above baseB by {test['mean']:+.2f} points (more than {s.above_points:g}, "
            f"one-sided p={test['p']:.3f}): re-training the upper layers beat the base network itself, so "
            "the base networks are under-trained; train longer (train.epochs=...) in a new sweep directory"]
