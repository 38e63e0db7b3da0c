"""Aggregation of result.json files: statistics, curve, derived quantities and reports."""
from __future__ import annotations

import csv
import json
import shutil
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.analysis import AnalysisError, aggregate, curve_rows, load_reference
from conftest import numbers_only
from benchmark.analysis.__main__ import main
from benchmark.analysis.stats import describe, welch_p

SEEDS = (0, 1, 2)
NS = (1, 2, 3)
DATASET = "synthetic_v2"  # the underscore must be escaped in table.tex
# role -> (treatment, finetune, label stem for target B, for target A)
ROLES = {
    "BnB": ("selffer", False, "BnB", "AnA"),
    "BnB+": ("selffer", True, "BnB+", "AnA+"),
    "AnB": ("transfer", False, "AnB", "BnA"),
    "AnB+": ("transfer", True, "AnB+", "BnA+"),
}


def base_value(seed: int, target: str) -> float:
    return 0.70 + 0.01 * seed + (0.005 if target == "A" else 0.0)


def value(role: str, n: int, seed: int, target: str) -> float:
    """Plausible made-up accuracies: AnB falls with n, BnB dips at n = 2, AnB+ beats the base."""
    shift = {"BnB": -0.02 * (n == 2), "BnB+": 0.0, "AnB": -0.01 * n, "AnB+": 0.015}[role]
    return base_value(seed, target) + shift + 0.002 * ((7 * seed + 3 * n) % 5)


def result(label: str, treatment: str, n: int, finetune: bool, target: str, seed: int,
           top1: float | None, status: str = "ok", reason: str | None = None) -> dict:
    source = None if treatment in ("base", "random") else (
        target if treatment == "selffer" else "AB".replace(target, ""))
    metrics = None if top1 is None else {"top1": top1, "top5": min(1.0, top1 + 0.2), "loss": 1.0,
                                         "top1_best": top1 + 0.005}
    return {"label": label, "treatment": treatment, "n": n, "finetune": finetune, "source": source,
            "target": target, "seed": seed, "status": status, "reason": reason, "metrics": metrics,
            "history": [], "wall_s": 2.0, "dataset": DATASET, "model": "convnet8", "split": "random",
            "config": {}, "versions": {}, "git_commit": "0" * 40}


def write(sweep: Path, name: str, data: dict | str) -> Path:
    path = sweep / name / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def populate(sweep: Path) -> None:
    """Both directions, 3 seeds, n = 1..3, plus every kind of trouble the aggregation must survive."""
    for seed in SEEDS:
        for target in "AB":
            write(sweep, f"base{target}_s{seed}",
                  result(f"base{target}", "base", 0, False, target, seed, base_value(seed, target)))
            for role, (treatment, finetune, stem_b, stem_a) in ROLES.items():
                for n in NS:
                    if (role, n, seed, target) == ("AnB+", 3, 2, "B"):
                        continue  # this one fails, below
                    label = f"{stem_b if target == 'B' else stem_a}{n}"
                    write(sweep, f"{label}_s{seed}",
                          result(label, treatment, n, finetune, target, seed, value(role, n, seed, target)))
    write(sweep, "AnB+3_s2", result("AnB+3", "transfer", 3, True, "B", 2, None, "failed",
                                    "loss diverged (NaN) at epoch 3"))
    write(sweep, "RnB1_s0", result("RnB1", "random", 1, False, "B", 0, 0.4))  # a single random run
    write(sweep, "AnB1_s9", result("AnB1", "transfer", 1, False, "B", 9, 0.69))  # no base for seed 9
    write(sweep, "broken", "{not json")
    old = write(sweep, "AnB1_s0_old", result("AnB1", "transfer", 1, False, "B", 0, 0.1))
    os.utime(old, (1_000_000, 1_000_000))  # an older copy of AnB1 seed 0: must be ignored


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep")
    populate(path)
    return path


@pytest.fixture(scope="module")
def report(sweep):
    return aggregate(sweep, reference="yosinski2014")


def pooled(role: str, n: int) -> list[float]:
    """Per split (seed), the mean of its two directions: the unit of replication."""
    return [np.mean([value(role, n, seed, target) for target in "AB"]) for seed in SEEDS]


def bases() -> list[float]:
    return [np.mean([base_value(seed, target) for target in "AB"]) for seed in SEEDS]


def test_describe_matches_student_t():
    values = [0.61, 0.64, 0.60, 0.66]
    point = describe(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert point["count"] == 4
    assert point["mean"] == pytest.approx(0.6275)
    assert point["std"] == pytest.approx(np.std(values, ddof=1))
    assert point["ci95"] == pytest.approx([low, high])


def test_describe_single_and_empty():
    assert describe([0.5]) == {"mean": 0.5, "std": None, "count": 1, "ci95": None, "values": [0.5]}
    assert describe([])["mean"] is None


def test_welch_p():
    a, b = [0.61, 0.64, 0.60, 0.66], [0.55, 0.58, 0.57]
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([0.5], b) is None
    assert welch_p([0.5, 0.5], [0.5, 0.5]) is None


def test_outputs_written(report, sweep):
    assert set(report.paths) == {"csv", "summary", "png", "pdf", "table", "findings", "methods"}
    assert report.paths["png"].read_bytes().startswith(b"\x89PNG")
    assert report.paths["pdf"].read_bytes().startswith(b"%PDF")
    for path in report.paths.values():
        assert path.parent == sweep and path.stat().st_size > 500
    assert not list(sweep.glob(".*.tmp"))


def test_without_figures_the_numbers_are_the_same_and_no_figure_is_drawn(report, sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    numbers = aggregate(copy, reference="yosinski2014", analysis=numbers_only())
    assert set(numbers.paths) == {"csv", "summary", "table", "findings", "methods"}
    assert not list(copy.glob("*.png")) and not list(copy.glob("*.pdf"))
    assert numbers.summary == report.summary
    assert (copy / "findings.md").read_text() == (sweep / "findings.md").read_text()


def test_summary_json_is_strict_and_matches(report):
    def no_nan(token):
        raise AssertionError(f"{token} in summary.json")
    on_disk = json.loads(report.paths["summary"].read_text(), parse_constant=no_nan)
    assert on_disk == json.loads(json.dumps(report.summary))
    assert on_disk["series"]["random"]["1"]["ci95"] is None  # one run: CI undefined -> null


def test_series_pool_both_directions_per_split_with_t_interval(report):
    point = report.summary["series"]["AnB"]["2"]
    values = pooled("AnB", 2)
    low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    assert point["count"] == 3  # splits, not runs: the two directions of a split are one replicate
    assert point["mean"] == pytest.approx(np.mean(values))
    assert point["ci95"] == pytest.approx([low, high])
    # runs pair with the base run of their seed and target: a paired t-test
    assert point["vs_base"]["test"] == "paired t"
    assert point["p_vs_base"] == pytest.approx(stats.ttest_rel(values, bases()).pvalue)
    assert point["vs_base"]["mean"] == pytest.approx(np.mean(values) - np.mean(bases()))
    assert report.summary["base"]["mean"] == pytest.approx(np.mean(bases()))


def test_newest_duplicate_kept(report):
    assert report.summary["runs"]["duplicates"] == 1
    assert 0.1 not in report.summary["series"]["AnB"]["1"]["values"]
    assert report.summary["series"]["AnB"]["1"]["count"] == 4  # 3 splits + the unmatched seed 9


def test_generality_on_matched_pairs(report):
    derived = report.summary["derived"]
    ratios = [np.mean([value("AnB", 2, s, t) / base_value(s, t) for t in "AB"]) for s in SEEDS]
    assert derived["generality"]["2"]["mean"] == pytest.approx(np.mean(ratios))
    assert derived["generality"]["2"]["count"] == 3
    assert derived["generality"]["1"]["count"] == 3
    assert derived["generality"]["1"]["unmatched"] == 1  # seed 9 has no base
    assert derived["coadaptation_loss"]["2"]["mean"] == pytest.approx(
        np.mean(bases()) - np.mean(pooled("BnB", 2)))
    assert derived["specificity_loss"]["3"]["mean"] == pytest.approx(
        np.mean(pooled("BnB", 3)) - np.mean(pooled("AnB", 3)))
    boost = derived["finetune_boost"]["3"]
    assert boost["unmatched"] == 0  # a base without its (failed) AnB+3 is not "unmatched"
    assert boost["count"] == 3 and boost["mean"] == pytest.approx(0.015 + 0.002 * np.mean(
        [(7 * s + 9) % 5 for s in SEEDS]))  # split 2 by its one direction left


def test_failed_and_corrupt_runs_reported(report):
    runs = report.summary["runs"]
    assert (runs["total"], runs["failed"]) == (runs["ok"] + 1, 1)
    [failed] = report.summary["failed"]
    assert failed == {"label": "AnB+3", "seed": 2, "target": "B",
                      "reason": "loss diverged (NaN) at epoch 3", "path": "AnB+3_s2/result.json"}
    [problem] = report.summary["problems"]
    assert problem["path"] == "broken/result.json" and "JSON" in problem["error"]
    assert report.summary["wall_s_total"] == pytest.approx(2.0 * runs["total"])


def test_results_csv(report):
    with report.paths["csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    required = ("label treatment n finetune source target seed status top1 top5 loss top1_best "
                "wall_s dataset model split reason path").split()
    assert set(required) <= set(rows[0])
    assert len(rows) == report.summary["runs"]["total"]
    [failed] = [row for row in rows if row["status"] == "failed"]
    assert failed["top1"] == "" and failed["reason"].startswith("loss diverged")
    assert rows[0]["treatment"] == "base"


def test_table_tex(report):
    tex = report.paths["table"].read_text()
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{", r"\label{tab:generality}"):
        assert command in tex
    assert "synthetic\\_v2" in tex and "synthetic_v2" not in tex
    values = pooled("AnB", 2)
    half = (stats.t.ppf(0.975, 2) * stats.sem(values)) * 100  # 3 splits
    assert f"{np.mean(values) * 100:.1f} \\pm {half:.1f}" in tex
    assert tex.count(r"\\") == 1 + 1 + 3  # header, base, n = 1..3


def test_curve_rows(report):
    rows = curve_rows(report.summary)
    assert rows[0]["series"] == "baseB" and rows[0]["n"] == 0
    assert {(r["series"], r["n"]) for r in rows} >= {("AnB+", 3), ("random", 1)}


def test_metric_choice(tmp_path):
    write(tmp_path, "b", result("baseB", "base", 0, False, "B", 0, 0.5))
    write(tmp_path, "a", result("AnB1", "transfer", 1, False, "B", 0, 0.4))
    assert aggregate(tmp_path, metric="top5", analysis=numbers_only()).summary["base"]["mean"] == pytest.approx(0.7)
    with pytest.raises(AnalysisError, match="top1_best, top5"):
        aggregate(tmp_path, metric="top3")
    with pytest.raises(AnalysisError, match="yosinski2014"):
        aggregate(tmp_path, reference="nope")


def _evaluated(last: float, epochs: int) -> list[dict]:
    """A held-out top-1 curve rising by a point an epoch to ``last``, every epoch evaluated."""
    return [{"epoch": e, "train_loss": 1.0, "val_top1": last - 0.01 * (epochs - e)}
            for e in range(1, epochs + 1)]


def test_the_papers_score_is_the_mean_of_the_10_best_evaluations(tmp_path, capsys):
    """analysis.metric=mean_highest: Yosinski et al.'s score, read off each run's history; a run
    evaluated fewer than 10 times is not scored, and says why."""
    for seed in SEEDS:
        write(tmp_path, f"b{seed}", result("baseB", "base", 0, False, "B", seed, 0.7)
              | {"history": _evaluated(0.70 + 0.01 * seed, 12)})
        write(tmp_path, f"a{seed}", result("AnB1", "transfer", 1, False, "B", seed, 0.6)
              | {"history": _evaluated(0.60, 12 if seed else 4)})
    summary = aggregate(tmp_path, metric="mean_highest", analysis=numbers_only()).summary
    assert summary["base"]["mean"] == pytest.approx(0.71 - 0.045)  # 10 best of a 1-point-an-epoch rise
    assert summary["series"]["AnB"]["1"]["count"] == 2
    failed, = summary["failed"]
    assert "4 held-out evaluations" in failed["reason"] and "train.eval_every=1" in failed["reason"]
    assert summary["findings"]["findings"][0]["row"] == "n=1"  # one layer: no fall, the first layer shown
    for seed in SEEDS:
        write(tmp_path / "short", f"b{seed}", result("baseB", "base", 0, False, "B", seed, 0.7)
              | {"history": _evaluated(0.7, 9)})
    with pytest.raises(SystemExit):
        main([str(tmp_path / "short"), "--metric", "mean_highest"])
    assert capsys.readouterr().err.strip() == (
        "error: no run can be scored by metric mean_highest: baseB seed 0 has 9 held-out evaluations in "
        "its history, and mean_highest is the mean of the 10 best: train with train.eval_every=1 and 10 "
        "or more epochs")


def test_reference_is_consistent_with_paper():
    ref = load_reference("yosinski2014")
    assert "README" in ref["source"]
    base, series = ref["baseB"]["mean"], ref["series"]
    assert (base, series["AnB"]["7"], series["BnB"]["5"]) == (0.6251, 0.5425, 0.5935)
    boost = {"n1-7": range(1, 8), "n3-7": range(3, 8), "n5-7": range(5, 8)}
    for key, ns in boost.items():  # the paper's fine-tuning boost, re-derived from the table
        mean = np.mean([series["AnB+"][str(n)] for n in ns])
        assert 100 * (mean - base) == pytest.approx(ref["finetune_boost_points"][key], abs=0.051)
    for n, delta in ref["anb_minus_base_points"]["random"].items():  # table cells are rounded
        assert 100 * (series["AnB"][n] - base) == pytest.approx(delta, abs=0.051)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_cli_bad_sweep_dir(tmp_path, capsys, make):
    with pytest.raises(SystemExit) as exit_info:
        main([str(make(tmp_path))])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_lists_failed_runs(tmp_path, capsys):
    write(tmp_path, "b", result("baseB", "base", 0, False, "B", 0, 0.5))
    write(tmp_path, "f", result("AnB4", "transfer", 4, False, "B", 0, None, "failed", "out of memory"))
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "AnB4 seed=0 target=B: out of memory" in out and "generality.png" in out


def test_cells_and_derived_quantities_paired_and_holm_corrected(report):
    from benchmark.analysis.stats import holm

    cells = [report.summary["series"]["AnB"][str(n)]["vs_base"] for n in NS]
    assert [c["p_holm"] for c in cells] == pytest.approx(holm([c["p"] for c in cells]))
    boost = report.summary["derived"]["finetune_boost"]["2"]
    assert boost["p"] == pytest.approx(stats.ttest_rel(pooled("AnB+", 2), bases()).pvalue)
    generality = report.summary["derived"]["generality"]["2"]  # tested against 1, not 0
    ratios = [np.mean([value("AnB", 2, s, t) / base_value(s, t) for t in "AB"]) for s in SEEDS]
    assert generality["p"] == pytest.approx(stats.ttest_1samp(ratios, 1.0).pvalue)
