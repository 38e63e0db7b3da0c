"""scripts/bench.py end to end on a tiny network: every bench.json key, sane values.

Timings on shared machines are noise, so nothing here asserts on speed, only on the
shape and the sense of the numbers (positive, FLOP fractions falling with n).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench.py"
KEYS = {"loop_vs_plain", "utilisation", "frozen_epoch_ratio", "trainable_flop_fraction",
        "feature_cache_speedup", "feature_cache_setup_s", "data_vs_model", "readout_vs_base_training",
        "peak_rss_mb",
        "peak_gpu_mb", "device", "torch", "overrides"}
PER_N = ("frozen_epoch_ratio", "trainable_flop_fraction", "feature_cache_speedup",
         "feature_cache_setup_s")
TINY = ["dataset.params.train_per_class=24", "model.width=4", "threads=1"]


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_bench_writes_every_key(tmp_path):
    done = bench(tmp_path, *TINY, "--steps", "2", "--repeats", "1", "--out", "b.json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "our loop / plain PyTorch loop" in done.stdout
    result = json.loads((tmp_path / "b.json").read_text())
    assert set(result) == KEYS
    assert positive(result["loop_vs_plain"])
    assert 0 < result["utilisation"] < 1
    for key in PER_N:
        assert list(result[key]) == [str(n) for n in range(1, 8)], key
        assert all(positive(v) for v in result[key].values()), key
    fractions = list(result["trainable_flop_fraction"].values())
    assert all(a > b for a, b in zip(fractions, fractions[1:])), fractions
    assert 0 < fractions[-1] < fractions[0] < 1
    assert list(result["data_vs_model"]) == ["synthetic"]
    assert positive(result["data_vs_model"]["synthetic"])
    assert positive(result["readout_vs_base_training"])
    assert positive(result["peak_rss_mb"])
    if torch.cuda.is_available():
        assert positive(result["peak_gpu_mb"])
    else:
        assert result["peak_gpu_mb"] is None
    assert result["device"] and result["torch"] == torch.__version__
    assert result["overrides"] == TINY


def test_bench_bad_override_is_one_line(tmp_path):
    done = bench(tmp_path, "model=nosuch")
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error:") and "model/nosuch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bench.json").exists()
