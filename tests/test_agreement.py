"""The cheap answer beside the protocol's: readout curves, the cheap generality (other / own),
its rank agreement with AnB / baseB per seed and pooled, the largest gap and the first costly n,
each checked against scipy or a plain computation on a constructed sweep."""
import numpy as np
import pytest
from scipy import stats

from benchmark.analysis import aggregate, default_analysis
from benchmark.protocol import EXTERNAL_SOURCE, EXTERNAL_SOURCED, run_label
from benchmark.store.results import write_result

BLOCKS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
SEEDS = (0, 1, 2, 3)


def protocol(n: int, seed: int) -> float:
    """AnB / baseB falls from n = 3 on (with a per-seed wobble)."""
    return 1.0 - 0.04 * max(0, n - 2) ** 1.5 + 0.003 * ((seed * 3 + n) % 4)


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
                 "other": [o * cheap(n, seed) for n, o in enumerate(own, start=1)]}
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
    low, high = agreement["pooled"]["spearman_ci95"]
    assert -1.0 <= low <= agreement["pooled"]["spearman"] <= high <= 1.0


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
