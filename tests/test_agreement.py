"""The cheap answer beside the protocol's: readout curves, the cheap generality (other / own),
its rank agreement with AnB / baseB per seed and pooled, the largest gap and the first costly n,
and the same scores of the depth-only and random-init nulls with the readout's difference and
its spread, each checked against scipy or a plain computation on a constructed sweep."""
import json

import numpy as np
import pytest
from scipy import stats

from benchmark.analysis import aggregate, default_analysis
from benchmark.analysis.cheap_scores import READOUT, UnitCurves, scored
from benchmark.protocol import EXTERNAL_SOURCE, EXTERNAL_SOURCED, run_label
from benchmark.store.results import write_result

BLOCKS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
SEEDS = (0, 1, 2, 3)


def protocol(n: int, seed: int) -> float:
    """AnB / baseB falls from n = 3 on (with a per-seed wobble)."""
    return 1.0 - 0.04 * max(0, n - 2) ** 1.5 + 0.003 * ((seed * 3 + n) % 4)


def random_init(n: int) -> float:
    """The random-init network's readout over the own base's: flat at the bottom, ranked wrongly."""
    return 0.9 - 0.01 * ((n * 2) % 5)


def cheap(n: int, seed: int) -> float:
    """The readout's other / own: the same ranks but a different scale, except that seed 3
    swaps blocks 1 and 2."""
    order = {1: 2, 2: 1}.get(n, n) if seed == 3 else n
    return 1.0 - 0.02 * order


def run(treatment: str, n: int, seed: int, top1: float, **extra) -> dict:
    return {"label": run_label(treatment, n, False, "B"), "treatment": treatment, "n": n, "finetune": False,
            "target": "B", "seed": seed, "status": "ok", "metrics": {"top1": top1}, "blocks": BLOCKS,
            "dataset": "synthetic", "model": "convnet8", "split": "random", **extra}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("sweep")
    for seed in SEEDS:
        base = 0.8 + 0.01 * seed
        own = [0.5 + 0.05 * n for n in range(1, 6)]
        entry = {"pool": 2, "train_images": 100, "images": 50, "own": own,
                 "other": [o * cheap(n, seed) for n, o in enumerate(own, start=1)],
                 "random_init": [o * random_init(n) for n, o in enumerate(own, start=1)]}
        write_result(sweep / f"baseB-seed{seed}", run("base", 0, seed, base, linear_probe=entry))
        for n in range(1, 6):
            write_result(sweep / f"AnB{n}-seed{seed}", run("transfer", n, seed, base * protocol(n, seed)))
    analysis = default_analysis(["analysis.measures=[linear_probe]", "analysis.agreement.bootstrap=200"])
    return aggregate(sweep, analysis=analysis).summary["linear_probe"]


def test_cheap_generality_is_other_over_own_per_seed(summary):
    for n in range(1, 6):
        assert summary["cheap_generality"]["other"][str(n)]["mean"] == pytest.approx(
            np.mean([cheap(n, s) for s in SEEDS]))
    assert summary["own"]["3"]["mean"] == pytest.approx(0.65) and summary["own"]["3"]["count"] == 4


def test_rank_agreement_per_seed_and_pooled_equals_scipy(summary):
    agreement = summary["agreement"]["AnB"]
    ns = range(1, 6)
    per_seed = [stats.spearmanr([cheap(n, s) for n in ns], [protocol(n, s) for n in ns]).statistic for s in SEEDS]
    assert agreement["units"] == 4
    assert agreement["per_unit"]["spearman"]["values"] == pytest.approx(per_seed)
    kendall = [stats.kendalltau([cheap(n, s) for n in ns], [protocol(n, s) for n in ns]).statistic for s in SEEDS]
    assert agreement["per_unit"]["kendall"]["values"] == pytest.approx(kendall)
    mean_cheap = [np.mean([cheap(n, s) for s in SEEDS]) for n in ns]
    mean_protocol = [np.mean([protocol(n, s) for s in SEEDS]) for n in ns]
    assert agreement["pooled"]["spearman"] == pytest.approx(stats.spearmanr(mean_cheap, mean_protocol).statistic)


def _mean(curve, seeds) -> list[float]:
    return [np.mean([curve(n, s) for s in seeds]) for n in range(1, 6)]


def test_the_nulls_are_scored_on_the_same_cells_with_the_readouts_difference(summary):
    nulls = summary["agreement"]["AnB"]["against_nulls"]
    predictors, versus = nulls["predictors"], nulls["readout_minus_null"]
    mean_protocol = _mean(protocol, SEEDS)
    depth = [1 - n / 5 for n in range(1, 6)]
    rho = lambda a, b: stats.spearmanr(a, b).statistic  # noqa: E731
    assert predictors["readout"]["within_curve_spearman"]["value"] == pytest.approx(rho(_mean(cheap, SEEDS), mean_protocol))
    assert predictors["depth"]["within_curve_spearman"]["value"] == pytest.approx(rho(depth, mean_protocol))
    assert predictors["random_init"]["within_curve_spearman"]["value"] == pytest.approx(
        rho([random_init(n) for n in range(1, 6)], mean_protocol))
    assert versus["depth"]["within_curve_spearman"]["value"] == pytest.approx(
        rho(_mean(cheap, SEEDS), mean_protocol) - rho(depth, mean_protocol))
    assert predictors["depth"]["mae_points"]["value"] == pytest.approx(
        np.mean([100 * abs(d - p) for d, p in zip(depth, mean_protocol)]))
    assert predictors["depth"]["same_block_order"]["value"] is None  # one condition: no pairs to order


def test_with_three_or_four_seeds_the_spread_is_stated_not_bootstrapped(summary):
    """4 units (under analysis.agreement.min_units): each score's range over the fits that leave one
    seed out, never a percentile interval whose end is the point estimate."""
    nulls = summary["agreement"]["AnB"]["against_nulls"]
    assert nulls["method"] == "leave-one-unit-out range" and nulls["units"] == 4
    left_out = [stats.spearmanr(_mean(cheap, [s for s in SEEDS if s != out]),
                                _mean(protocol, [s for s in SEEDS if s != out])).statistic for out in SEEDS]
    point = nulls["predictors"]["readout"]["within_curve_spearman"]
    assert "ci95" not in point and point["range"] == pytest.approx([min(left_out), max(left_out)])


def test_first_costly_block_decisions_per_unit_exact_and_within_one(summary):
    nulls = summary["agreement"]["AnB"]["against_nulls"]["predictors"]
    first = lambda values: next((i for i, v in enumerate(values) if v < 0.95), 5)  # noqa: E731
    gaps = [abs(first([cheap(n, s) for n in range(1, 6)]) - first([protocol(n, s) for n in range(1, 6)]))
            for s in SEEDS]
    assert nulls["readout"]["decision_exact"]["value"] == pytest.approx(np.mean([g == 0 for g in gaps]))
    assert nulls["readout"]["decision_within_one"]["value"] == pytest.approx(np.mean([g <= 1 for g in gaps]))
    depth_gaps = [abs(0 - first([protocol(n, s) for n in range(1, 6)])) for s in SEEDS]  # 1 - 1/5 < 0.95
    assert nulls["depth"]["decision_exact"]["value"] == pytest.approx(np.mean([g == 0 for g in depth_gaps]))


def test_largest_gap_and_first_costly_n(summary):
    agreement = summary["agreement"]["AnB"]
    mean_cheap = {n: np.mean([cheap(n, s) for s in SEEDS]) for n in range(1, 6)}
    mean_protocol = {n: np.mean([protocol(n, s) for s in SEEDS]) for n in range(1, 6)}
    gaps = {n: 100 * abs(mean_cheap[n] - mean_protocol[n]) for n in mean_cheap}
    assert agreement["largest_gap_points"] == {"n": max(gaps, key=gaps.get), "points": pytest.approx(max(gaps.values()))}
    first = lambda curve: next(n for n in sorted(curve) if curve[n] < 0.95)  # noqa: E731
    assert agreement["first_costly_n"] == {"cheap": first(mean_cheap), "protocol": first(mean_protocol)}


def test_an_external_source_is_read_out_against_xnb(tmp_path):
    """A zoo or external source's readout over the own base's (the cheap XnB) beside XnB / baseB."""
    for seed in SEEDS[:3]:
        own = [0.5 + 0.05 * n for n in range(1, 6)]
        entry = {"pool": 2, "train_images": 100, "images": 50, "own": own,
                 EXTERNAL_SOURCE: [o * cheap(n, seed) for n, o in enumerate(own, start=1)]}
        write_result(tmp_path / f"baseB-seed{seed}", run("base", 0, seed, 0.8, linear_probe=entry))
        for n in range(1, 6):
            write_result(tmp_path / f"XnB{n}-seed{seed}", run("external", n, seed, 0.8 * protocol(n, seed)))
    analysis = default_analysis(["analysis.measures=[linear_probe]", "analysis.agreement.bootstrap=200"])
    summary = aggregate(tmp_path, analysis=analysis).summary["linear_probe"]
    for n in range(1, 6):
        assert summary["cheap_generality"][EXTERNAL_SOURCE][str(n)]["mean"] == pytest.approx(
            np.mean([cheap(n, s) for s in SEEDS[:3]]))
    agreement = summary["agreement"][EXTERNAL_SOURCED]
    assert agreement["units"] == 3 and "AnB" not in summary["agreement"]
    assert agreement["per_unit"]["spearman"]["values"] == pytest.approx(
        [stats.spearmanr([cheap(n, s) for n in range(1, 6)], [protocol(n, s) for n in range(1, 6)]).statistic
         for s in SEEDS[:3]])


def test_across_sweeps_the_readout_is_scored_on_every_cell_against_the_nulls(tmp_path, capsys):
    """Two conditions (say a random and a dissimilar split): the second lies 0.01 n below the
    first in the protocol and 0.02 n below it in the readout, so the readout orders every pair of
    conditions at the same block as the protocol does, the depth-only null none (ties), and the
    drop at the top blocks (n >= 0.7 L = 3.5) is 4.5 points in the protocol, 9 in the readout."""
    from benchmark.analysis.__main__ import main

    for name, lower in (("first", 0.0), ("second", 1.0)):
        for seed in SEEDS[:3]:
            own = [0.5 + 0.05 * n for n in range(1, 6)]
            other = [o * (cheap(n, seed) - 0.02 * n * lower) for n, o in enumerate(own, start=1)]
            entry = {"pool": 2, "train_images": 100, "images": 50, "own": own, "other": other,
                     "random_init": [o * random_init(n) for n, o in enumerate(own, start=1)]}
            write_result(tmp_path / name / f"baseB-seed{seed}", run("base", 0, seed, 0.8, linear_probe=entry))
            for n in range(1, 6):
                write_result(tmp_path / name / f"AnB{n}-seed{seed}",
                             run("transfer", n, seed, 0.8 * (protocol(n, seed) - 0.01 * n * lower)))
    assert main([str(tmp_path / "first"), str(tmp_path / "second"), "--out", str(tmp_path / "out"),
                 "--set", "analysis.measures=[linear_probe]", "--set", "analysis.agreement.bootstrap=200"]) == 0
    result = json.loads((tmp_path / "out" / "cheap_answer.json").read_text())["linear_probe"]
    scores = result["scores"]
    assert scores["units"] == 6 and scores["method"] == "leave-one-unit-out range"
    assert scores["predictors"]["readout"]["same_block_order"]["value"] == pytest.approx(1.0)
    assert scores["predictors"]["depth"]["same_block_order"]["value"] == pytest.approx(0.5)
    assert scores["readout_minus_null"]["depth"]["same_block_order"]["value"] == pytest.approx(0.5)
    second = result["top_blocks"]["sweep 2"]
    assert second["blocks"] == [4, 5]
    assert second["below_first_points"]["protocol"] == pytest.approx(4.5)
    assert second["below_first_points"]["readout"] == pytest.approx(9.0)
    assert (tmp_path / "out" / "cheap_answer.png").stat().st_size > 0
    assert "# The cheap answer across the sweeps" in capsys.readouterr().out


def test_a_split_s_two_directions_are_left_out_and_resampled_together():
    """The split is the unit of replication: three splits each read in both directions (twins)
    spread exactly as the same three splits read in one direction, by leave-one-out and by the
    bootstrap."""
    rng = np.random.default_rng(3)
    curves = [({n: 1.0 - 0.1 * n + e for n, e in enumerate(rng.normal(0, 0.05, 4), start=1)},
               {n: 1.0 - 0.08 * n for n in range(1, 5)}) for _ in range(6)]

    def units(targets: str, count: int) -> list[UnitCurves]:
        return [UnitCurves("c", f"demo/{seed}/{target}", protocol, {READOUT: readout})
                for seed, (protocol, readout) in enumerate(curves[:count]) for target in targets]

    for count, min_units in ((3, 5), (6, 5)):  # leave-one-out range, then the bootstrap
        one, both = (scored(units(targets, count), 0.95, True, min_units, 200) for targets in ("B", "AB"))
        assert one["method"] == both["method"] and both["fewest_units"] == count
        spreads = [score["predictors"][READOUT]["mae_points"] for score in (one, both)]
        assert spreads[1]["value"] == pytest.approx(spreads[0]["value"])
        key = "range" if count == 3 else "ci95"
        assert spreads[1][key] == pytest.approx(spreads[0][key])
