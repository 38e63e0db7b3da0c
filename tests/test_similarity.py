"""Layer similarity: the streaming linear CKA against a plain full-batch reference, its
invariances, its errors, frozen copied blocks, and a sweep that writes the heatmap."""
import json
import math
from unittest import mock

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from benchmark.data.batches import Normalizer
from benchmark.data.images import ImageTensors
from benchmark.models.convnet8 import convnet8
from benchmark.store.fingerprint import config_fingerprint
from benchmark.measures import MEASURES, VS_SOURCE, HeldOutSample, compare_networks
from benchmark.measures.cka import cka
from benchmark.surgery import prepare_target
from conftest import run_main
from wandb_records import closed_records


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Full-batch linear CKA with the unbiased HSIC (Song et al. 2012), written out plainly."""
    n = len(x)
    ones = np.ones(n)

    def hsic(k: np.ndarray, l: np.ndarray) -> float:
        k, l = k.copy(), l.copy()
        np.fill_diagonal(k, 0)
        np.fill_diagonal(l, 0)
        return (np.trace(k @ l) + (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (ones @ k @ l @ ones)) / (n * (n - 3))

    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))


def related(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 representations that share a 5-dimensional signal (CKA well inside (0, 1))."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 5, generator=g, dtype=torch.float64)
    x = z @ torch.randn(5, d, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) + 3
    y = torch.tanh(z @ torch.randn(5, d + 3, generator=g, dtype=torch.float64))
    return x, y + 0.5 * torch.randn(n, d + 3, generator=g, dtype=torch.float64)


def test_cka_of_a_representation_with_itself_is_one():
    x, _ = related(300, 12)
    assert cka(x, x, batch_size=100) == pytest.approx(1.0, abs=1e-12)
    conv = torch.randn(64, 4, 5, 5)
    for pool in ("flatten", "mean"):
        assert cka(conv, conv, batch_size=32, pool=pool) == pytest.approx(1.0, abs=1e-12)


def test_invariant_to_orthogonal_maps_and_isotropic_scaling_not_to_any_invertible_map():
    x, y = related(400, 10)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    before = cka(x, y, batch_size=100)
    assert 0.2 < before < 0.9
    assert cka(x @ q, y, batch_size=100) == pytest.approx(before, abs=1e-10)
    assert cka(7.5 * x, y, batch_size=100) == pytest.approx(before, abs=1e-10)
    stretch = torch.diag(torch.logspace(-2, 2, 10, dtype=torch.float64)) @ q  # invertible, not orthogonal
    assert torch.linalg.det(stretch).abs() > 0
    assert abs(cka(x @ stretch, y, batch_size=100) - before) > 0.05
    assert cka(x @ stretch, x, batch_size=100) < 0.9


def test_one_batch_equals_the_full_batch_reference_and_minibatches_agree_within_1e_3():
    x, y = related(96, 10)
    assert cka(x, y, batch_size=96) == pytest.approx(reference_cka(x.numpy(), y.numpy()), abs=1e-10)
    x, y = related(2048, 8, seed=3)
    full = reference_cka(x.numpy(), y.numpy())
    assert abs(cka(x, y, batch_size=512) - full) < 1e-3
    # conv-shaped activations: ``flatten`` is the reference on the flattened maps
    maps = torch.randn(128, 3, 4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    other = torch.relu(maps.flip(1))
    assert cka(maps, other, batch_size=128) == pytest.approx(
        reference_cka(maps.flatten(1).numpy(), other.flatten(1).numpy()), abs=1e-10)
    assert cka(maps, other, batch_size=128, pool="mean") == pytest.approx(
        reference_cka(maps.mean((2, 3)).numpy(), other.mean((2, 3)).numpy()), abs=1e-10)


def test_constant_representation_or_too_small_batch_is_a_clear_error_never_nan():
    x, _ = related(64, 6)
    with pytest.raises(ValueError, match="constant"):
        cka(torch.ones(64, 6), x, batch_size=32)
    with pytest.raises(ValueError, match="too small"):
        cka(x[:3], x[:3], batch_size=3)


SETTINGS = OmegaConf.create({"enabled": True, "images": 150, "pool": "flatten", "batch_size": 64})


def _probe(count: int = 200) -> HeldOutSample:
    g = torch.Generator().manual_seed(0)
    images = ImageTensors(torch.randint(0, 256, (count, 3, 24, 24), generator=g, dtype=torch.uint8),
                          torch.zeros(count, dtype=torch.long))
    return HeldOutSample.draw(images, SETTINGS.images, SETTINGS.batch_size, 0,
                              Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu")), torch.device("cpu"))


def vs_source(trained, source, sample: HeldOutSample) -> dict:
    """The CKA measure's entry of a copying run."""
    return compare_networks([(MEASURES["cka"], SETTINGS)], sample, trained, source, VS_SOURCE)["similarity"]


def test_frozen_copied_blocks_score_exactly_one_and_retrained_blocks_less():
    torch.manual_seed(0)
    source = convnet8(4, 24, width=4, fc_width=16)
    target = prepare_target(convnet8(4, 24, width=4, fc_width=16), source.state_dict(), 3,
                            frozen=True, bn_eval=True)
    params = [p for p in target.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.05)
    x, labels = torch.randn(32, 3, 24, 24), torch.randint(0, 4, (32,))
    for _ in range(3):  # BatchNorm statistics and weights of the upper blocks move, not the prefix's
        target.train()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(target(x), labels).backward()
        optimizer.step()
    entry = vs_source(target, source, _probe())
    assert torch.is_grad_enabled()  # the next training in this process still gets gradients
    assert entry["images"] == 150 and "error" not in entry
    assert entry["vs_source"][:3] == [1.0, 1.0, 1.0]
    assert all(value < 1.0 for value in entry["vs_source"][3:])


def test_a_constant_block_is_recorded_as_an_error_not_nan():
    torch.manual_seed(0)
    source = convnet8(4, 24, width=4, fc_width=16)
    dead = convnet8(4, 24, width=4, fc_width=16)
    dead.blocks["conv1"][0].weight.data.zero_()  # conv1 outputs BatchNorm's beta: constant
    entry = vs_source(dead, source, _probe())
    assert "vs_source" not in entry and "constant" in entry["error"] and "conv1" in entry["error"]


def test_similarity_settings_do_not_change_the_fingerprint_of_finished_results(smoke_cfg):
    assert config_fingerprint(smoke_cfg()) == config_fingerprint(
        smoke_cfg("analysis.similarity.enabled=false", "analysis.similarity.pool=mean"))


def test_a_bad_setting_on_the_command_line_is_one_error_line(tmp_path):
    proc = run_main("experiment=smoke", "analysis.similarity.pool=max", f"hydra.run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: analysis.similarity.pool=max is unknown; use one of flatten, mean; fix it, e.g. "
        "analysis.similarity.pool=flatten"]


def test_sweep_writes_similarity_numbers_heatmap_and_wandb_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_main("-m", "experiment=smoke", "treatment=base,transfer", "n=0,2", "finetune=false,true",
                    "wandb.mode=offline", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / "similarity.png").stat().st_size > 0 and (sweep / "similarity.pdf").stat().st_size > 0
    base = json.loads((sweep / "baseB-seed0" / "result.json").read_text())["similarity"]
    assert base["images"] == 48  # every held-out image of the smoke target half (fewer than 1024)
    similarity = json.loads((sweep / "summary.json").read_text())["similarity"]
    matrix = np.array(similarity["base_vs_base"]["matrix"])
    assert matrix.shape == (7, 7) and np.isfinite(matrix).all() and (matrix <= 1.0).all()
    assert matrix.tolist() == base["base_vs_base"]  # one seed: the mean is the run's matrix
    assert similarity["blocks"]["7"] == "fc7"
    frozen, tuned = similarity["vs_source"]["AnB"]["2"], similarity["vs_source"]["AnB+"]["2"]
    assert [b["mean"] for b in frozen["blocks"][:2]] == [1.0, 1.0] and frozen["copied"]["mean"] == 1.0
    assert tuned["copied"]["mean"] < 1.0 and 0.0 < frozen["retrained"]["mean"] < 1.0
    summary_run = next((sweep / "summary" / "wandb").glob("offline-run-*/run-*.wandb"))
    logged = {(item.key or item.nested_key[0]).split("/")[0] for record in closed_records(summary_run)
              if record.WhichOneof("record_type") == "history" for item in record.history.item}
    assert {"similarity_figure", "similarity_base_vs_base"} <= logged


def test_switched_off_no_similarity_is_measured(tmp_path):
    proc = run_main("experiment=smoke", "treatment=base", "analysis.similarity.enabled=false",
                    "warm_sources=true", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["similarity"] is None


def test_a_source_kept_by_its_key_runs_once_and_gives_the_entries_it_gives_when_run_each_time():
    torch.manual_seed(0)
    source = convnet8(4, 24, width=4, fc_width=16)
    trained = [convnet8(4, 24, width=4, fc_width=16) for _ in range(2)]
    sample, cka_only = _probe(), [(MEASURES["cka"], SETTINGS)]
    fresh = [compare_networks(cka_only, sample, t, source, VS_SOURCE)["similarity"] for t in trained]
    with mock.patch.object(source, "visit_block_outputs", wraps=source.visit_block_outputs) as runs:
        kept = [compare_networks(cka_only, sample, t, source, VS_SOURCE, ("a source", "B"))["similarity"]
                for t in trained]
    assert runs.call_count == 2  # the sample's two minibatches, for the first network only
    strip = lambda entry: {k: v for k, v in entry.items() if k != "seconds"}  # noqa: E731
    assert [strip(e) for e in kept] == [strip(e) for e in fresh]
