"""Checks a reviewer asks for before reading the findings: are the base networks trained
to the end, is the base the ceiling the findings compare against, and do the halves hold the
same amount of training data?

An under-trained base makes the curve something else than the paper's: re-training the
upper layers (BnB at the lowest n) then beats the base itself. A second training cycle on a
trained base's blocks (BnB+) that beats the base says the same of the fine-tuned findings.
A check that fires marks the findings it touches as provisional (``gate``), with its reason.
Halves with different amounts of training data put the sweep in the small-target-data
regime, where transfer can beat the base at every n.
"""
from __future__ import annotations

from collections.abc import Iterable

from benchmark.analysis.curve import HISTORY_METRIC, Table, is_usable, paired_differences, role_table
from benchmark.analysis.findings import FindingsSettings, points_scale
from benchmark.analysis.stats import holm, paired
from benchmark.protocol import BASE, SELFFER, SELFFER_TUNED, TREATMENTS
from benchmark.store.record import RunRecord

BASE_FINDINGS = [1, 2, 3, 4, 5]   # every finding measured against baseB (6 compares AnB with RnB)
SECOND_CYCLE_FINDINGS = [3, 4]    # the fine-tuned findings: BnB+ at baseB, AnB+ above it


def sanity_checks(results: Iterable[RunRecord], metric: str, settings: FindingsSettings) -> dict:
    """``{"regime": str, "warnings": [str, ...], "checks": [{"check", "warning", "findings"}]}``
    for the usable runs of a sweep: each check that fired, with the findings it makes provisional."""
    results = [r for r in results if is_usable(r, metric)]
    checks = [{"check": name, "warning": warning, "findings": touched}
              for name, touched, warnings in (
                  ("still_improving", BASE_FINDINGS, _still_improving(results, settings)),
                  ("selffer_above_base", BASE_FINDINGS, _selffer_beats_base(results, metric, settings)),
                  ("second_cycle_above_base", SECOND_CYCLE_FINDINGS, _second_cycle(results, metric, settings)))
              for warning in warnings]
    return {"regime": regime(results), "warnings": [c["warning"] for c in checks], "checks": checks}


def gate(findings: dict, sanity: dict) -> dict:
    """Mark each finding a fired check touches as provisional, with the check's warning as the
    reason (``finding["provisional"]``: the reasons; absent when none)."""
    for finding in findings.get("findings", []):
        reasons = [c["warning"] for c in sanity["checks"] if finding["id"] in c["findings"]]
        if reasons:
            finding["provisional"] = reasons
    return findings


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
    test = _excess(table, SELFFER, ns[0], scale, s)
    if test["p"] is None or test["p"] >= s.alpha:
        return []
    return [f"BnB at n={ns[0]} is above baseB by {test['mean']:+.2f} points (more than {s.above_points:g}, "
            f"one-sided p={test['p']:.3f}): re-training the upper layers beat the base network itself, so "
            "the base networks are under-trained; train longer (train.epochs=...) in a new sweep directory"]


def _second_cycle(results: list[RunRecord], metric: str, s: FindingsSettings) -> list[str]:
    """BnB+ shown above baseB by more than ``above_points`` at some n (one-sided, Holm across n):
    a second training cycle on a trained base's blocks beats the base, so the base is not the
    ceiling the fine-tuned findings compare against."""
    scale = points_scale(metric)
    table = role_table(results, metric)
    ns = sorted(table.get(SELFFER_TUNED, {}))
    if scale is None or not ns:
        return []
    tests = {n: _excess(table, SELFFER_TUNED, n, scale, s) for n in ns}
    shown = [(n, tests[n], p) for n, p in zip(ns, holm([t["p"] for t in tests.values()]))
             if p is not None and p < s.alpha]
    if not shown:
        return []
    where = ", ".join(f"n={n} {t['mean']:+.2f} (Holm p={p:.3f})" for n, t, p in shown)
    return [f"BnB+ is above baseB by more than {s.above_points:g} points at {where}: a second training cycle "
            "on a trained base's blocks beats the base itself, so baseB is not the ceiling the fine-tuned "
            "findings compare against (AnB+ - BnB+ in finding 4's detail separates transfer's boost from "
            "this gain); train the bases longer (train.epochs=...) in a new sweep directory"]


def _excess(table: Table, role: str, n: int, scale: float, s: FindingsSettings) -> dict:
    """The one-sided paired test of ``role`` at layer n above baseB by more than ``above_points``
    (per split, in points)."""
    return paired([d * scale for d in paired_differences(table, role, BASE, n).values()], s.above_points,
                  "greater")
