"""The readout measures in runs and sweeps: base runs read their own and the other half's base
block by block, the aggregation reports the cheap curves and their agreement with the protocol
(summary.json, measures.md, a figure per measure); CKA's chance level; the errors."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.data.batches import Normalizer
from benchmark.data.images import ImageTensors
from benchmark.measures import BASE_VS_BASE, MEASURES, HeldOutSample, compare_networks
from benchmark.models.convnet8 import convnet8
from conftest import run_main

READOUTS = "analysis.measures=[cka,linear_probe,knn,logme]"


def test_a_sweep_reports_each_readout_beside_the_protocol(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_main("-m", "experiment=smoke", "treatment=base,transfer", "n=0,1,2,3", READOUTS, "threads=1",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    base = json.loads((sweep / "baseB-seed0" / "result.json").read_text())
    for key in ("linear_probe", "knn", "logme"):
        entry = base[key]
        assert len(entry["own"]) == len(entry["other"]) == len(entry["random_init"]) == 7 and entry["pool"] == 2
        assert entry["train_images"] == 96 and entry["images"] == 48  # every image of the smoke half
    probe = json.loads((sweep / "summary.json").read_text())["linear_probe"]
    assert set(probe["cheap_generality"]["other"]) == {str(n) for n in range(1, 8)}
    assert set(probe["cheap_generality"]["random_init"]) == {str(n) for n in range(1, 8)}
    assert probe["agreement"]["AnB"]["pooled"]["blocks"] == [1, 2, 3]  # the protocol ran n = 1..3
    assert all(0.0 <= p["mean"] <= 1.0 for p in probe["own"].values())
    assert "## linear_probe" in (sweep / "measures.md").read_text()
    assert (sweep / "linear_probe.png").stat().st_size > 0


def test_k_above_the_training_images_is_one_error_line(tmp_path):
    proc = run_main("experiment=smoke", "treatment=base", READOUTS, "analysis.knn.k=500",
                    f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "run" / "result.json").exists()
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: analysis.knn.k=500: ") and "96" in line and "lower k" in line


def test_cka_chance_level_is_near_zero_and_far_below_cka():
    torch.manual_seed(0)
    x, y = convnet8(4, 24, width=4, fc_width=16), convnet8(4, 24, width=4, fc_width=16)
    g = torch.Generator().manual_seed(0)
    images = ImageTensors(torch.randint(0, 256, (256, 3, 24, 24), generator=g, dtype=torch.uint8),
                          torch.zeros(256, dtype=torch.long))
    settings = OmegaConf.create({"enabled": True, "images": 256, "pool": "flatten", "batch_size": 128})
    sample = HeldOutSample.draw(images, 256, 128, 0, Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu")),
                                torch.device("cpu"))
    same = compare_networks([(MEASURES["cka"], settings)], sample, x, x, BASE_VS_BASE)["similarity"]
    other = compare_networks([(MEASURES["cka"], settings)], sample, x, y, BASE_VS_BASE)["similarity"]
    for entry in (same, other):
        chance = torch.tensor(entry["chance"])
        assert chance.abs().max() < 0.1  # images paired at random share nothing
    assert torch.tensor(same["base_vs_base"]).diagonal().tolist() == pytest.approx([1.0] * 7)
