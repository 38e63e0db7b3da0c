"""The paper's findings: each verdict (holds, real but small, contradicted, inconclusive with the
seeds a decision needs) on constructed sweeps for every finding, the regions landing on their
documented verdict at true effects 0, margin/2 and 2 x margin with many seeds, the split as the
unit of replication, sanity checks gating verdicts, ``not enough runs`` naming the missing runs,
what one seed says, settings checks, sweep comparison."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmark.analysis import aggregate, compare_sweeps, default_findings
from benchmark.analysis.__main__ import main
from benchmark.analysis.compare import differences, sweep_labels
from benchmark.analysis import findings as findings_module
from benchmark.analysis.findings import findings_settings, layer_ranges, regions_table
from benchmark.errors import UserError
from benchmark.protocol import CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_ENOUGH_RUNS, SMALL, run_label
from benchmark.store.record import RunRecord
from benchmark.store.results import write_result
from conftest import numbers_only

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
        history: list | None = None, target: str = "B") -> dict:
    return {"label": run_label(treatment, n, finetune, target), "treatment": treatment, "n": n,
            "finetune": finetune, "target": target, "seed": seed, "status": "ok", "reason": None,
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


def records(curve: Curve = paper, seeds=SEEDS, split: str = "random", targets: str = "B") -> list[RunRecord]:
    """The runs of ``make_sweep`` in memory (no files, no figures): for the verdict rules alone."""
    runs = [run("base", 0, False, seed, base(seed), split, target=t) for seed in seeds for t in targets]
    runs += [run(treatment, n, finetune, seed, curve(series, n, seed), split, target=t)
             for seed in seeds for t in targets for series, (treatment, finetune) in SERIES.items()
             for n in range(1, 8)]
    return [RunRecord.from_json(r) for r in runs]


def findings_of(runs: list[RunRecord], **settings) -> dict[int, dict]:
    findings = default_findings([f"analysis.findings.{k}={v}" for k, v in settings.items()])
    block = findings_module.test_findings(runs, "top1", findings_settings(findings))
    return {f["id"]: f for f in block["findings"]}


def verdicts(sweep: Path, **settings) -> dict[int, dict]:
    findings = default_findings([f"analysis.findings.{k}={v}" for k, v in settings.items()])
    summary = aggregate(sweep, findings=findings, analysis=numbers_only()).summary
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


MANY = range(28)  # seeds: the wobble's period (7) four times, so it averages to exactly 0


@pytest.mark.parametrize("changes, finding", [
    ({"AnB": lambda n, s: base(s) - 0.2 + noise(s, n)}, 1),                 # no fall with n
    ({"AnB": lambda n, s: base(s) - 6.0 - 3.0 * n + noise(s, n)}, 1),       # far below at n = 1, 2
    ({"BnB": lambda n, s: base(s) + noise(s, n)}, 2),                        # no dip
    ({"BnB+": lambda n, s: base(s) - 5.0 + noise(s, n)}, 3),                 # BnB+ below the base
    ({"BnB+": lambda n, s: base(s) + 4.0 + noise(s, n)}, 3),                 # ... or well above it
    ({"AnB+": lambda n, s: base(s) - 0.5 + noise(s, n)}, 4),                 # no boost
    ({"random": lambda n, s: paper("AnB", n, s) - 2.0 + noise(s, n + 1)}, 6),  # random nearly as good
])
def test_data_showing_the_opposite_contradict_the_finding(changes, finding):
    found = findings_of(records(with_changes(**changes), MANY))
    assert found[finding]["verdict"] == CONTRADICTED and found[finding]["decision"] is None
    others = {i: f["verdict"] for i, f in found.items() if i not in (finding, 5)}
    assert set(others.values()) == {HOLDS}


def effect_of(finding: int, effect: float) -> Curve:
    """The paper's shape with one finding's true effect set to ``effect`` points."""
    return with_changes(**{
        1: {"AnB": lambda n, s: base(s) - effect * (n - 1) / 6 + noise(s, n)},   # a linear fall over 1..7
        2: {"BnB": lambda n, s: base(s) - (effect if 3 <= n <= 5 else 0.0) + noise(s, n)},
        3: {"BnB+": lambda n, s: base(s) + effect + noise(s, n)},
        4: {"AnB+": lambda n, s: base(s) + effect + noise(s, n)},
        5: {"AnB": lambda n, s: paper("AnB", n, s) - (effect if n >= 5 else 0.0)},  # the dissimilar split's
        6: {"random": lambda n, s: paper("AnB", n, s) - effect + noise(s, n + 1)},
    }[finding])


MARGINS = {1: "near_points", 2: "dip_points", 3: "same_points", 4: "boost_points", 5: "gap_points",
           6: "far_points"}
# the documented verdict of each region (docs: the verdict table) at true effects margin x fraction
DOCUMENTED = {0.0: CONTRADICTED, 0.5: SMALL, 2.0: HOLDS}
EQUIVALENCE = {0.0: HOLDS, 0.5: HOLDS, 2.0: CONTRADICTED}  # finding 3: within +-margin


def effect_runs(finding: int, fraction: float) -> list[RunRecord]:
    margin = default_findings()[MARGINS[finding]]
    if finding != 5:
        return records(effect_of(finding, fraction * margin), MANY)
    return records(seeds=MANY) + records(effect_of(5, fraction * margin), MANY, split="family")


@pytest.mark.parametrize("finding", sorted(MARGINS))
@pytest.mark.parametrize("fraction", sorted(DOCUMENTED))
def test_each_true_effect_lands_on_its_documented_verdict(finding, fraction):
    found = findings_of(effect_runs(finding, fraction))[finding]
    expected = (EQUIVALENCE if finding == 3 else DOCUMENTED)[fraction]
    assert found["verdict"] == expected, found["detail"]
    assert found["decision"] is None


@pytest.mark.parametrize("finding", sorted(MARGINS))
def test_an_effect_on_its_margin_takes_no_verdict_from_the_other_side(finding):
    """Exactly on the margin, either neighbouring region (or none) may be shown, never a far one."""
    found = findings_of(effect_runs(finding, 1.0))[finding]
    allowed = {HOLDS, CONTRADICTED, INCONCLUSIVE} if finding == 3 else {HOLDS, SMALL, INCONCLUSIVE}
    assert found["verdict"] in allowed


def test_the_region_table_names_every_finding_with_its_margins():
    table = regions_table(findings_settings(default_findings()))
    for i in MARGINS:
        assert f"\n| {i} | " in table
    assert "dip_points 2:" in table and "between 0.25 and 1" in table and "some layer under 2.5 (Holm)" in table
    from conftest import REPO
    for page in ("verdicts.md", "validation.md"):
        assert table in (REPO / "docs" / page).read_text(), f"docs/{page}: paste regions_table()"


def test_estimate_and_p_shown_come_from_the_same_test_on_the_same_row():
    """Each finding shows its deciding test: that row's estimate and CI beside that test's p."""
    from scipy import stats

    found = findings_of(records())
    for f in found.values():
        if f["verdict"] in (HOLDS, CONTRADICTED, SMALL) and f["row"]:
            assert f["p"] < 0.05 and f["p_test"].startswith(("<", ">"))
    first = found[1]  # holds: its weakest test, here AnB - baseB > -2 at one of the first layers
    n = int(first["row"].removeprefix("n="))
    values = [paper("AnB", n, s) - base(s) for s in SEEDS]
    assert first["estimate"] == pytest.approx(sum(values) / len(values))
    assert first["p"] == pytest.approx(stats.ttest_1samp(values, -2.0, alternative="greater").pvalue)


def test_both_directions_of_a_split_are_one_replicate():
    """target=A,B with each direction a copy of the other gives the intervals of target=B: the
    directions of one split are averaged, not counted as two replicates."""
    one = findings_of(records(seeds=range(3)))
    two = findings_of(records(seeds=range(3), targets="AB"))
    for i in one:
        assert (one[i]["estimate"], one[i]["ci95"], one[i]["p"]) == (two[i]["estimate"], two[i]["ci95"], two[i]["p"])
    from benchmark.analysis import build_summary
    a, b = build_summary(records(seeds=range(3))), build_summary(records(seeds=range(3), targets="AB"))
    assert a["base"]["ci95"] == b["base"]["ci95"] and a["base"]["count"] == b["base"]["count"] == 3
    for series in a["series"]:
        for n in a["series"][series]:
            assert a["series"][series][n]["ci95"] == pytest.approx(b["series"][series][n]["ci95"])
            assert a["series"][series][n]["vs_base"]["ci95"] == pytest.approx(b["series"][series][n]["vs_base"]["ci95"])
    assert a["derived"]["generality"]["3"]["ci95"] == pytest.approx(b["derived"]["generality"]["3"]["ci95"])


def wide(shift: float, amplitude: float = 6.0) -> Callable[[int, int], float]:
    """A series at ``shift`` points from the base with a wide per-seed spread."""
    return lambda n, s: base(s) + shift + noise(s, n, amplitude)


@pytest.mark.parametrize("changes, finding", [
    ({"AnB": lambda n, s: wide(-1.0)(n, s) if n <= 2 else paper("AnB", n, s)}, 1),
    ({"BnB": lambda n, s: wide(-1.0)(n, s) if 3 <= n <= 5 else paper("BnB", n, s)}, 2),
    ({"BnB+": wide(0.0)}, 3),
    ({"AnB+": lambda n, s: base(s) + 1.5 + noise(s, 0, 6.0)}, 4),  # the same wobble at every n
    ({"random": lambda n, s: paper("AnB", n, s) - 14.0 + noise(s, n + 1, 8.0)}, 6),
])
def test_too_wide_a_spread_is_inconclusive_with_a_range_of_seeds(tmp_path, changes, finding):
    found = verdicts(make_sweep(tmp_path, with_changes(**changes)))
    decision = found[finding]["decision"]
    assert found[finding]["verdict"] == INCONCLUSIVE
    assert decision["towards"] in (HOLDS, SMALL, CONTRADICTED)
    low, high = decision["range"]
    assert decision["seeds"] is None or decision["seeds"] > len(SEEDS)
    if low is None:  # no number of seeds up to the limit decides anywhere in the CI
        assert high is None and decision["seeds"] is None
    else:
        assert (high is None or low <= high) and (decision["seeds"] is None or low <= decision["seeds"])
    table = (tmp_path / "findings.md").read_text()
    assert f"{INCONCLUSIVE} (towards {decision['towards']}: " in table and "95% CI)" in table
    assert "Decide the number of seeds before looking" in table


def test_not_enough_runs_names_the_missing_runs(tmp_path):
    sweep = make_sweep(tmp_path, skip=lambda series, n, seed: (series == "AnB" and n == 1 and seed > 0)
                       or series == "random")
    found = verdicts(sweep)
    assert found[1]["verdict"] == NOT_ENOUGH_RUNS
    assert "AnB1 with baseB (1 split(s) with runs paired by seed and target, 2 needed)" in found[1]["missing"]
    assert found[6]["verdict"] == NOT_ENOUGH_RUNS
    assert "AnB3 with RnB3 (0 split(s) with runs paired by seed and target, 2 needed)" in found[6]["missing"]
    assert found[2]["verdict"] == HOLDS


def test_fine_tuned_runs_at_some_layers_are_tested_there_and_a_missing_one_still_counts():
    fine_tuned_at = (2, 4, 6)
    runs = [r for r in records() if not r.finetune or r.n in fine_tuned_at]
    found = findings_of(runs)
    assert (found[3]["verdict"], found[4]["verdict"]) == (HOLDS, HOLDS)
    assert found[3]["layers"] == found[4]["layers"] == list(fine_tuned_at)
    assert "n=2: " in found[3]["detail"] and "n=3: " not in found[3]["detail"]
    without_one = [r for r in runs if r.label != "BnB+4"]
    assert findings_of(without_one)[3]["verdict"] == NOT_ENOUGH_RUNS  # AnB+4 ran: BnB+4 is missing


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
    assert "## What differs between the sweeps" in text
    assert text.split("## Finding 5 across the sweeps")[1].count(f"| {HOLDS} |") == 1
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    noisy = with_changes(AnB=lambda n, s: paper("AnB", n, s) - (2.0 + noise(s, 0, 12.0) if n >= 5 else 0.0))
    across = {"same": (paper, f"| {CONTRADICTED} |"),  # falls as much: not more by 2 points
              "noisy": (noisy, f"| {INCONCLUSIVE} (towards")}
    for name, (curve, verdict) in across.items():
        other = make_sweep(tmp_path / name, curve, split="family")
        again = compare_sweeps([random, other], tmp_path / f"out-{name}", findings=findings, analysis=numbers_only())
        assert verdict in again["markdown"].read_text().split("across the sweeps")[1], name


def test_a_comparison_names_each_sweep_by_the_fewest_settings_that_tell_them_apart():
    """Sweeps on two datasets and two splits differ in a dozen settings (a dataset's mean, its
    recipe's epochs): the legend names them by dataset and split, every difference stays listed."""
    def sweep(dataset: str, split: str, epochs: int) -> list[dict]:
        config = {"dataset": {"name": dataset, "mean": [0.5 if dataset == "cifar10" else 0.4]},
                  "split": {"name": split}, "train": {"epochs": epochs}, "model": {"name": "convnet8"}}
        return [config | {"seed": seed} for seed in (0, 1)]
    configs = [sweep("tiny_imagenet", "random", 40), sweep("tiny_imagenet", "natural_manmade", 40),
               sweep("cifar10", "random", 60)]
    differing = differences(configs)
    assert sweep_labels(differing) == ["dataset.name=tiny_imagenet, split.name=random",
                                       "dataset.name=tiny_imagenet, split.name=natural_manmade",
                                       "dataset.name=cifar10, split.name=random"]
    assert differing[2] == {"dataset.mean": [0.5], "dataset.name": "cifar10", "split.name": "random", "train.epochs": 60}
    assert sweep_labels(differences([sweep("cifar10", "random", 60), sweep("cifar10", "random", 90)])) == \
        ["train.epochs=60", "train.epochs=90"]  # no named setting differs: the first other one that does
    assert sweep_labels(differences([sweep("cifar10", "random", 60)] * 2)) == ["sweep 1", "sweep 2"]


def test_finding_5_across_two_datasets_says_it_mixes_them(tmp_path):
    random = make_sweep(tmp_path / "random")
    for path in random.glob("*/result.json"):  # the random split on another dataset
        result = json.loads(path.read_text())
        result["config"]["dataset"] = {"name": "cifar10"}
        path.write_text(json.dumps(result))
    family = make_sweep(tmp_path / "family", split="family")
    text = compare_sweeps([random, family], tmp_path / "out", analysis=numbers_only())["markdown"].read_text()
    assert "dataset.name=cifar10, split.name=random" in text
    assert "The sweeps are on 2 datasets (None, cifar10)" in text.split("## Finding 5 across the sweeps")[1]
    same = compare_sweeps([make_sweep(tmp_path / "random-again"), family], tmp_path / "same", analysis=numbers_only())
    assert "datasets" not in same["markdown"].read_text().split("## Finding 5 across the sweeps")[1]


def test_the_comparison_sets_each_sweep_s_own_verdicts_side_by_side(tmp_path):
    """One row per sweep: its baseB and each finding's verdict as its own findings.md gives it
    (sanity gating included), the grid docs/validation.md compares recipes and worlds with."""
    sweeps = [make_sweep(tmp_path / "a"), make_sweep(tmp_path / "b", with_changes(
        BnB=lambda n, s: paper("BnB", n, s) + (3.0 if n == 1 else 0.0)))]  # a base beaten: provisional
    markdown = compare_sweeps(sweeps, tmp_path / "out", analysis=numbers_only())["markdown"].read_text()
    assert not list((tmp_path / "out").glob("comparison.*[fg]"))  # analysis.figures=false: no png, no pdf
    grid = markdown.split("## Verdicts side by side")[1].split("\n## ")[0]
    rows = [line for line in grid.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2
    for row, sweep in zip(rows, sweeps):
        summary = aggregate(sweep, analysis=numbers_only()).summary
        cells = row.split(" | ")
        assert cells[1].startswith(f"{100 * summary['base']['mean']:.2f} [")
        assert [c.split(" (")[0].split(",")[0] for c in cells[2:]] == [
            f["verdict"] for f in summary["findings"]["findings"]]
        assert ("(provisional)" in row) == any(f.get("provisional") for f in summary["findings"]["findings"])
    assert "(provisional)" in rows[1]


def test_a_sweep_is_judged_by_the_findings_settings_its_runs_were_run_with(tmp_path, capsys):
    """A preset may set analysis.findings (experiment=demo does): re-aggregating its sweep, alone
    or compared, uses them, and --set changes only the keys it names."""
    sweep = make_sweep(tmp_path / "sweep")
    for path in sweep.glob("*/result.json"):
        result = json.loads(path.read_text())
        result["config"]["analysis"] = {"findings": {"boost_points": 5.0}}
        path.write_text(json.dumps(result))
    assert aggregate(sweep, analysis=numbers_only()).summary["findings"]["findings"][3]["test"] == "mean over n of AnB+ - baseB > 5"
    assert findings_of(records())[4]["test"] == "mean over n of AnB+ - baseB > 1"  # conf/config.yaml's
    other = make_sweep(tmp_path / "other")
    markdown = compare_sweeps([sweep, other], tmp_path / "out", analysis=numbers_only())["markdown"].read_text()
    assert "> 5 |" in markdown.split("## sweep 2")[0] and "> 1 |" in markdown.split("## sweep 2")[1]
    assert main([str(sweep), "--set", "analysis.findings.alpha=0.01"]) == 0
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["findings"]["findings"][3]["test"] == "mean over n of AnB+ - baseB > 5"
    capsys.readouterr()


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
    for setting, line in [("analysis.figures=maybe", "analysis.figures=maybe is not true or false"),
                          ("analysis.figures=2", "analysis.figures=2 is not true or false"),  # OmegaConf: true
                          ("analysis.findings.dip_points=abc", "analysis.findings.dip_points=abc is not a number"),
                          ("analysis.nokey=1", "unknown config key 'analysis.nokey'")]:
        with pytest.raises(SystemExit):
            main([str(tmp_path), "--set", setting])
        assert capsys.readouterr().err.strip().startswith(f"error: --set: {line}")  # as a run names it
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
    summary = aggregate(make_sweep(tmp_path, beats), analysis=numbers_only()).summary
    warnings = " ".join(summary["sanity"]["warnings"])
    assert "baseB seed 9: +9.0 points" in warnings and "BnB at n=1 is above baseB" in warnings
    assert "equal size" in summary["sanity"]["regime"]
    small = run("transfer", 1, False, 0, 60.0) | {"train_per_class": 20}
    write_result(tmp_path / "small" / "AnB1-seed0", small)
    assert "small-target-data" in aggregate(tmp_path / "small", analysis=numbers_only()).summary["sanity"]["regime"]


def test_under_trained_bases_make_the_findings_against_baseB_provisional(tmp_path):
    rising = [{"epoch": e, "val_top1": 0.5 + 0.03 * e} for e in range(1, 11)]
    write_result(tmp_path / "baseB-seed9", run("base", 0, False, 9, 75.0, history=rising))
    report = aggregate(make_sweep(tmp_path), analysis=numbers_only())
    found = {f["id"]: f for f in report.summary["findings"]["findings"]}
    assert sorted(i for i, f in found.items() if f.get("provisional")) == [1, 2, 3, 4, 5]
    assert "still improving" in found[2]["provisional"][0]
    text = report.paths["findings"].read_text()
    assert f"| {HOLDS} (provisional) |" in text and "Provisional: base networks still improving" in text
    saved = json.loads(report.paths["summary"].read_text())["findings"]["findings"]
    assert saved[0]["provisional"] == found[1]["provisional"] and "provisional" not in saved[5]


def test_a_second_training_cycle_above_the_base_makes_the_fine_tuned_findings_provisional(tmp_path):
    """BnB+ above baseB by more than above_points at some n (here +1.6 at every n): the base is not
    the ceiling; findings 3 and 4 are provisional, and the sanity checks say why."""
    report = aggregate(make_sweep(tmp_path, with_changes(**{"BnB+": lambda n, s: base(s) + 1.6 + noise(s, n)})), analysis=numbers_only())
    found = {f["id"]: f for f in report.summary["findings"]["findings"]}
    assert sorted(i for i, f in found.items() if f.get("provisional")) == [3, 4]
    assert "second training cycle" in found[3]["provisional"][0]
    assert any("BnB+ is above baseB by more than 1 points" in w for w in report.summary["sanity"]["warnings"])
    calm = aggregate(make_sweep(tmp_path / "calm"), analysis=numbers_only()).summary
    assert not calm["sanity"]["warnings"] and not any(f.get("provisional") for f in calm["findings"]["findings"])


def test_finding_4_reports_the_boost_beyond_a_second_training_cycle():
    found = findings_of(records(with_changes(**{"BnB+": lambda n, s: base(s) + 1.0 + noise(s, n)})))[4]
    assert found["row"] == "AnB+ - baseB, mean over n" and found["estimate"] == pytest.approx(1.5, abs=0.2)
    assert "AnB+ - BnB+ averaged over the same layers" in found["detail"]
    assert "AnB+ - BnB+, mean over n: +0.5" in found["detail"]


@pytest.mark.parametrize("excess, fires", [(3.0, True), (1.6, True), (0.4, False)])
def test_selffer_above_the_base_fires_only_beyond_its_margin(tmp_path, excess, fires):
    """BnB1 shown above baseB by more than analysis.findings.above_points (1 point) means
    under-trained bases; a fraction of a point, however consistent across seeds, does not."""
    above = with_changes(BnB=lambda n, s: base(s) + (excess if n == 1 else 0.0) + noise(s, n))
    warnings = " ".join(aggregate(make_sweep(tmp_path, above), analysis=numbers_only()).summary["sanity"]["warnings"])
    assert ("BnB at n=1 is above baseB" in warnings) == fires, warnings
    assert not fires or "more than 1," in warnings


@pytest.mark.parametrize("last_gain, flagged", [(0.03, True), (0.002, False)])
def test_the_plateau_check_reads_a_base_curve_evaluated_every_third_epoch(tmp_path, last_gain, flagged):
    evaluated = {3: 0.70, 6: 0.76, 9: 0.80, 12: 0.80 + last_gain}  # train.eval_every=3, 12 epochs
    history = [{"epoch": e, **({"val_top1": evaluated[e]} if e in evaluated else {})}
               for e in range(1, 13)]
    write_result(tmp_path / "baseB-seed9", run("base", 0, False, 9, 80.0, history=history))
    warnings = " ".join(aggregate(make_sweep(tmp_path), analysis=numbers_only()).summary["sanity"]["warnings"])
    assert ("baseB seed 9: +3.0 points" in warnings) == flagged, warnings


def test_a_run_checks_the_findings_settings_before_it_starts():
    from benchmark.config import compose_config
    from benchmark.preflight import check_config

    with pytest.raises(UserError, match=r"analysis.findings.far_points=-1.0 must be positive"):
        check_config(compose_config("analysis.findings.far_points=-1"))
    with pytest.raises(UserError, match=r"train.epochs=12 with train.eval_every=3 evaluates 4 times"):
        check_config(compose_config("experiment=demo_long", "analysis.metric=mean_highest"))
    check_config(compose_config("experiment=demo_long", "analysis.metric=mean_highest", "train.eval_every=1"))


def test_analysis_help_prints_the_verdict_regions(capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(["--help"])
    assert exit_code.value.code == 0
    out = capsys.readouterr().out
    assert regions_table(findings_settings(default_findings())) in out
