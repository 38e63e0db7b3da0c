"""The paper's findings: each of the three verdicts (holds, contradicted, inconclusive with the
seeds a decision needs) on constructed sweeps for every finding, ``not enough runs`` naming the
missing runs, what one seed says, settings checks, sweep comparison."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmark.analysis import aggregate, compare_sweeps, default_findings
from benchmark.analysis.__main__ import main
from benchmark.analysis.findings import findings_settings, layer_ranges
from benchmark.errors import UserError
from benchmark.protocol import CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_ENOUGH_RUNS, run_label
from benchmark.store.results import write_result

BLOCKS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
SEEDS = (0, 1, 2, 3)
# (treatment, finetune) of each series
SERIES = {"BnB": ("selffer", False), "BnB+": ("selffer", True), "AnB": ("transfer", False),
          "AnB+": ("transfer", True), "random": ("random", False)}
Curve = Callable[[str, int, int], float]  # (series, n, seed) -> accuracy in points


def noise(seed: int, n: int, amplitude: float = 0.3) -> float:
    """A deterministic wobble (points, within +-amplitude) so that differences have a spread."""
    return amplitude * (((5 * seed + 3 * n) % 7) - 3) / 3


def base(seed: int) -> float:
    return 70.0 + seed


def paper(series: str, n: int, seed: int) -> float:
    """The paper's shape: AnB near the base at n = 1, 2, then falling; BnB dips at 3..5;
    BnB+ at the base; AnB+ 1.5 points above; random frozen layers collapse."""
    shift = {"AnB": -0.2 if n <= 2 else -3.0 * (n - 2), "BnB": -4.0 if 3 <= n <= 5 else 0.0,
             "BnB+": 0.0, "AnB+": 1.5, "random": -5.0 if n == 1 else -60.0}[series]
    return base(seed) + shift + noise(seed, n + len(series))  # each series its own wobble


def with_changes(**changes: Callable[[int, int], float]) -> Curve:
    """``paper`` with some series replaced by (n, seed) -> accuracy."""
    return lambda series, n, seed: changes[series](n, seed) if series in changes else paper(series, n, seed)


def run(treatment: str, n: int, finetune: bool, seed: int, top1: float, split: str = "random",
        history: list | None = None) -> dict:
    return {"label": run_label(treatment, n, finetune, "B"), "treatment": treatment, "n": n,
            "finetune": finetune, "target": "B", "seed": seed, "status": "ok", "reason": None,
            "metrics": {"top1": top1 / 100, "top5": 1.0, "loss": 1.0}, "blocks": BLOCKS,
            "dataset": "synthetic", "model": "convnet8", "split": split, "train_per_class": None,
            "target_fraction": None, "classes_A": list("abcd"), "classes_B": list("efgh"),
            "history": history or [], "config": {"split": {"name": split}, "seed": seed}}


def make_sweep(root: Path, curve: Curve = paper, split: str = "random", ns=range(1, 8),
               skip: Callable[[str, int, int], bool] = lambda *_: False) -> Path:
    """A sweep directory of result.json files written through the results API."""
    for seed in SEEDS:
        write_result(root / f"baseB-seed{seed}", run("base", 0, False, seed, base(seed), split))
        for series, (treatment, finetune) in SERIES.items():
            for n in ns:
                if not skip(series, n, seed):
                    result = run(treatment, n, finetune, seed, curve(series, n, seed), split)
                    write_result(root / f"{result['label']}-seed{seed}", result)
    return root


def verdicts(sweep: Path, **settings) -> dict[int, dict]:
    findings = default_findings([f"analysis.findings.{k}={v}" for k, v in settings.items()])
    summary = aggregate(sweep, findings=findings).summary
    return {f["id"]: f for f in summary["findings"]["findings"]}


def test_every_finding_holds_on_the_papers_shape(tmp_path):
    found = verdicts(make_sweep(tmp_path))
    assert {i: f["verdict"] for i, f in found.items()} == {
        1: HOLDS, 2: HOLDS, 3: HOLDS, 4: HOLDS, 5: NOT_ENOUGH_RUNS, 6: HOLDS}
    assert found[2]["layers"] == [3, 4, 5] and found[6]["layers"] == [3, 4, 5, 6, 7]
    assert found[2]["estimate"] == pytest.approx(4.0, abs=0.5)  # the dip, in points
    assert found[4]["estimate"] == pytest.approx(1.5, abs=0.5)  # the smallest boost
    assert any("split=family" in m for m in found[5]["missing"])
    text = (tmp_path / "findings.md").read_text()
    assert "| 2 | BnB dips below baseB" in text and HOLDS in text


def wide(shift: float, amplitude: float = 6.0) -> Callable[[int, int], float]:
    """A series at ``shift`` points from the base with a wide per-seed spread."""
    return lambda n, s: base(s) + shift + noise(s, n, amplitude)


@pytest.mark.parametrize("changes, finding", [
    ({"AnB": lambda n, s: base(s) - 0.2 + noise(s, n)}, 1),                 # no fall with n
    ({"AnB": lambda n, s: base(s) - 6.0 - 3.0 * n + noise(s, n)}, 1),       # far below at n = 1, 2
    ({"BnB": lambda n, s: base(s) + noise(s, n)}, 2),                        # BnB non-inferior: no dip
    ({"BnB+": lambda n, s: base(s) - 5.0 + noise(s, n)}, 3),                 # BnB+ below the base
    ({"BnB+": lambda n, s: base(s) + 4.0 + noise(s, n)}, 3),                 # ... or well above it
    ({"AnB+": lambda n, s: base(s) - (5.0 if n == 6 else 0.0) + noise(s, n)}, 4),  # one layer loses
    ({"random": lambda n, s: paper("AnB", n, s) - 2.0 + noise(s, n + 1)}, 6),  # random nearly as good
])
def test_data_showing_the_opposite_contradict_the_finding(tmp_path, changes, finding):
    found = verdicts(make_sweep(tmp_path, with_changes(**changes)))
    assert found[finding]["verdict"] == CONTRADICTED and found[finding]["decision"] is None
    others = {i: f["verdict"] for i, f in found.items() if i not in (finding, 5)}
    assert set(others.values()) == {HOLDS}


@pytest.mark.parametrize("changes, finding", [
    ({"AnB": lambda n, s: wide(-1.0)(n, s) if n <= 2 else paper("AnB", n, s)}, 1),
    ({"BnB": lambda n, s: wide(-1.0)(n, s) if 3 <= n <= 5 else paper("BnB", n, s)}, 2),
    ({"BnB+": wide(0.0)}, 3),
    ({"AnB+": wide(-1.0)}, 4),
    ({"random": lambda n, s: paper("AnB", n, s) - 14.0 + noise(s, n + 1, 8.0)}, 6),
])
def test_too_wide_a_spread_is_inconclusive_with_the_seeds_a_decision_needs(tmp_path, changes, finding):
    found = verdicts(make_sweep(tmp_path, with_changes(**changes)))
    decision = found[finding]["decision"]
    assert found[finding]["verdict"] == INCONCLUSIVE
    assert decision["seeds"] > len(SEEDS) and decision["towards"] in (HOLDS, CONTRADICTED)
    table = (tmp_path / "findings.md").read_text()
    assert f"{INCONCLUSIVE} (about {decision['seeds']} seeds would decide: {decision['towards']})" in table


def test_not_enough_runs_names_the_missing_runs(tmp_path):
    sweep = make_sweep(tmp_path, skip=lambda series, n, seed: (series == "AnB" and n == 1 and seed > 0)
                       or series == "random")
    found = verdicts(sweep)
    assert found[1]["verdict"] == NOT_ENOUGH_RUNS
    assert "AnB1 with baseB (1 run(s) paired by seed and target, 2 needed)" in found[1]["missing"]
    assert found[6]["verdict"] == NOT_ENOUGH_RUNS
    assert "AnB3 with RnB3 (0 run(s) paired by seed and target, 2 needed)" in found[6]["missing"]
    assert found[2]["verdict"] == HOLDS


def test_one_seed_shows_every_estimate_and_says_verdicts_need_two(tmp_path, capsys):
    sweep = tmp_path / "one"
    for series, (treatment, finetune) in {"base": ("base", False), **SERIES}.items():
        for n in ([0] if treatment == "base" else range(1, 8)):
            top1 = base(0) if treatment == "base" else paper(series, n, 0)
            write_result(sweep / f"{series}{n}", run(treatment, n, finetune, 0, top1) | {"wall_s": 60.0})
    found = verdicts(sweep)
    assert {f["verdict"] for f in found.values()} == {NOT_ENOUGH_RUNS}
    assert all(found[i]["estimate"] is not None for i in (1, 2, 3, 4, 6))  # 5 needs a second split
    assert found[2]["estimate"] == pytest.approx(4.0, abs=0.5) and found[2]["ci95"] is None
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "verdicts need 2 or more seeds" in out and "seed=0,1,2" in out and "36 minutes of run time" in out


def test_finding_5_across_a_random_and_a_dissimilar_sweep(tmp_path):
    random = make_sweep(tmp_path / "random")
    falls_more = with_changes(AnB=lambda n, s: paper("AnB", n, s) - (4.0 if n >= 5 else 0.0))
    family = make_sweep(tmp_path / "family", falls_more, split="family")
    findings = default_findings()
    paths = compare_sweeps([random, family], tmp_path / "out", findings=findings)
    text = paths["markdown"].read_text()
    assert "split.name=random" in text and "split.name=family" in text  # legend: what differs
    assert text.split("## Finding 5 across the sweeps")[1].count(f"| {HOLDS} |") == 1
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    noisy = with_changes(AnB=lambda n, s: paper("AnB", n, s) - (2.0 + noise(s, 0, 12.0) if n >= 5 else 0.0))
    across = {"same": (paper, f"| {CONTRADICTED} |"),  # falls as much: not more by 2 points
              "noisy": (noisy, f"| {INCONCLUSIVE} (about")}
    for name, (curve, verdict) in across.items():
        other = make_sweep(tmp_path / name, curve, split="family")
        again = compare_sweeps([random, other], tmp_path / f"out-{name}", findings=findings)
        assert verdict in again["markdown"].read_text().split("across the sweeps")[1], name


def test_cli_compares_sweeps_and_prints_findings(tmp_path, capsys):
    random = make_sweep(tmp_path / "a")
    family = make_sweep(tmp_path / "b", split="family")
    assert main([str(random), str(family), "--set", "analysis.findings.alpha=0.01"]) == 0
    out = capsys.readouterr().out
    assert out.count("| 1 | AnB stays near baseB") >= 2 and "Finding 5 across the sweeps" in out
    assert (tmp_path / "comparison" / "comparison.pdf").exists()


def test_bad_settings_end_in_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(make_sweep(tmp_path, ns=[1])), "--set", "analysis.findings.alpha=2"])
    assert capsys.readouterr().err.strip() == (
        "error: analysis.findings.alpha=2.0 must be in (0, 1); fix it, e.g. analysis.findings.alpha=0.05")
    defaults = default_findings()
    with pytest.raises(UserError, match="middle_layers"):
        findings_settings({**defaults, "middle_layers": [0.8, 0.2]})
    with pytest.raises(UserError, match="unknown key"):
        findings_settings({**defaults, "alhpa": 0.05})


def test_layers_scale_with_depth():
    s = findings_settings(default_findings())
    assert layer_ranges(7, s) == {"first": [1, 2], "middle": [3, 4, 5], "all": list(range(1, 8)),
                                  "top": [5, 6, 7], "random": [3, 4, 5, 6, 7]}
    five = layer_ranges(5, s)
    assert five["first"] == [1] and five["middle"] == [2, 3] and five["top"] == [4, 5]


def test_sanity_checks_name_under_training_and_the_regime(tmp_path):
    rising = [{"epoch": e, "val_top1": 0.5 + 0.03 * e} for e in range(1, 11)]
    write_result(tmp_path / "baseB-seed9", run("base", 0, False, 9, 75.0, history=rising))
    beats = with_changes(BnB=lambda n, s: base(s) + 3.0 + noise(s, n))
    summary = aggregate(make_sweep(tmp_path, beats)).summary
    warnings = " ".join(summary["sanity"]["warnings"])
    assert "baseB seed 9: +9.0 points" in warnings and "BnB at n=1 is above baseB" in warnings
    assert "equal size" in summary["sanity"]["regime"]
    small = run("transfer", 1, False, 0, 60.0) | {"train_per_class": 20}
    write_result(tmp_path / "small" / "AnB1-seed0", small)
    assert "small-target-data" in aggregate(tmp_path / "small").summary["sanity"]["regime"]


@pytest.mark.parametrize("excess, fires", [(3.0, True), (1.6, True), (0.4, False)])
def test_selffer_above_the_base_fires_only_beyond_its_margin(tmp_path, excess, fires):
    """BnB1 shown above baseB by more than analysis.findings.above_points (1 point) means
    under-trained bases; a fraction of a point, however consistent across seeds, does not."""
    above = with_changes(BnB=lambda n, s: base(s) + (excess if n == 1 else 0.0) + noise(s, n))
    warnings = " ".join(aggregate(make_sweep(tmp_path, above)).summary["sanity"]["warnings"])
    assert ("BnB at n=1 is above baseB" in warnings) == fires, warnings
    assert not fires or "more than 1," in warnings


@pytest.mark.parametrize("last_gain, flagged", [(0.03, True), (0.002, False)])
def test_the_plateau_check_reads_a_base_curve_evaluated_every_third_epoch(tmp_path, last_gain, flagged):
    evaluated = {3: 0.70, 6: 0.76, 9: 0.80, 12: 0.80 + last_gain}  # train.eval_every=3, 12 epochs
    history = [{"epoch": e, **({"val_top1": evaluated[e]} if e in evaluated else {})}
               for e in range(1, 13)]
    write_result(tmp_path / "baseB-seed9", run("base", 0, False, 9, 80.0, history=history))
    warnings = " ".join(aggregate(make_sweep(tmp_path)).summary["sanity"]["warnings"])
    assert ("baseB seed 9: +3.0 points" in warnings) == flagged, warnings


def test_a_run_checks_the_findings_settings_before_it_starts():
    from benchmark.config import compose_config
    from benchmark.preflight import check_config

    with pytest.raises(UserError, match=r"analysis.findings.far_points=-1.0 must be positive"):
        check_config(compose_config("analysis.findings.far_points=-1"))
    with pytest.raises(UserError, match=r"train.epochs=12 with train.eval_every=3 evaluates 4 times"):
        check_config(compose_config("experiment=demo", "analysis.metric=mean_highest"))
    check_config(compose_config("experiment=demo", "analysis.metric=mean_highest", "train.eval_every=1"))
