"""scripts/bench.py end to end on a tiny network: every bench.json key, sane values.

Timings on shared machines are noise, so nothing here asserts on speed, only on the
shape and the sense of the numbers (positive, FLOP fractions falling with n).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext
from hydra.utils import instantiate

from benchmark.config import CONFIG_DIR, compose_config
from conftest import Result
from hydra_plugins.transferbench_sweeper import WARM_SOURCES

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench.py"
KEYS = {"loop_vs_plain", "utilisation", "frozen_epoch_ratio", "trainable_flop_fraction",
        "feature_cache_speedup", "feature_cache_setup_s", "data_vs_model", "readout_vs_base_training",
        "peak_rss_mb",
        "peak_gpu_mb", "device", "torch", "overrides"}
PER_N = ("frozen_epoch_ratio", "trainable_flop_fraction", "feature_cache_speedup",
         "feature_cache_setup_s")
RECIPE_KEYS = {"recipes", "levers", "peak_rss_mb", "peak_gpu_mb", "device", "torch", "overrides"}
RECIPE_ROW = {"network_s", "seed_s", "sweep_s", "networks_per_seed", "seeds", "utilisation", "images_per_s"}
VS_FIRST = {"network_vs_first", "seed_vs_first", "sweep_vs_first"}
TINY = ["dataset.params.train_per_class=24", "model.width=4", "threads=1"]


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


@functools.cache
def _bench_script():
    """scripts/bench.py as a module (a script, not a package module), the environment variables it
    sets on import put back."""
    saved = dict(os.environ)
    spec = importlib.util.spec_from_file_location("scripts_bench", BENCH)
    script = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
    spec.loader.exec_module(script)
    os.environ.clear()
    os.environ.update(saved)
    return script


def bench_in_process(tmp_path: Path, *args: str) -> Result:
    """``bench.py ARGS`` through its ``main`` in this process, for the command lines it refuses before
    measuring anything: no new interpreter importing torch for one error line (the script's own
    process ends in one, test_unknown_recipe_is_one_line)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(tmp_path), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _bench_script().main(list(args))
            code = 0
        except SystemExit as leaving:
            code = leaving.code
    return Result(code, out.getvalue(), err.getvalue())


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow  # scripts/bench.py end to end (15 s): a developer's tool, measured by hand on quiet cores
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


@pytest.mark.parametrize("override, named", [("model=nosuch", "model/nosuch"),
                                              ("train.epochs=-1", "train.epochs=-1 must be at least 1")])
def test_bench_bad_override_is_one_line(tmp_path, override, named):
    done = bench_in_process(tmp_path, override)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error:") and named in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bench.json").exists()


def sweeper_networks(preset: str, sweep_dir: Path) -> int:
    """The networks the protocol sweeper trains for the preset's grid: its jobs (split as the
    real sweeper splits them) plus the other half's base network each warming base job trains."""
    cfg = compose_config(f"experiment={preset}", f"hydra.sweep.dir={sweep_dir}", hydra_config=True)
    sweeper = instantiate(cfg.hydra.sweeper)  # as Hydra makes it (its plugin scan reloads the classes)
    sweeper.config = cfg
    sweeper.hydra_context = HydraContext(ConfigLoaderImpl(create_config_search_path(CONFIG_DIR)),
                                         callbacks=None)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    jobs = [job for wave in sweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
            for job in wave]
    return len(jobs) + sum(WARM_SOURCES in job for job in jobs)


@pytest.mark.slow  # about 25 s on 2 busy cores, a minute on a loaded machine
def test_recipes_side_by_side(tmp_path):
    done = bench(tmp_path, "--recipes", "demo_long,demo", *TINY, "--steps", "2", "--repeats", "1",
                 "--out", "r.json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "levers on demo" in done.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result) == RECIPE_KEYS
    assert list(result["recipes"]) == ["demo_long", "demo"]
    for name, row in result["recipes"].items():
        expected = RECIPE_ROW | (VS_FIRST if name == "demo" else set())
        assert set(row) == expected, name
        assert all(positive(row[key]) for key in expected), row
        assert 0 < row["utilisation"] < 1
        assert row["network_s"] < row["seed_s"] <= row["sweep_s"]
        networks = sweeper_networks(name, tmp_path / name)
        assert row["networks_per_seed"] * row["seeds"] == networks, name
        params = compose_config(f"experiment={name}", hydra_config=True).hydra.sweeper.params
        assert row["seeds"] == len(str(params.get("seed", "0")).split(",")), name
    levers = result["levers"]
    assert set(levers) == {"channels_last", "batch_size", "image_size", "processes_vs_threads"}
    assert all(lever["note"] for lever in levers.values())
    assert list(levers["batch_size"]) == ["64", "128", "256", "note"]
    for values in levers.values():
        assert all(positive(v) for k, v in values.items() if k not in ("note", "cores")) \
            or values["cores"] == 1, values
    sizes = [compose_config(f"experiment={name}").dataset.params.image_size for name in result["recipes"]]
    ratio = levers["image_size"]["flop_ratio"]  # the first preset's image against the last's
    assert ratio == pytest.approx(1.0) if sizes[0] == sizes[-1] else (ratio > 1) == (sizes[0] > sizes[-1])


def test_recipes_need_two_presets(tmp_path):
    done = bench_in_process(tmp_path, "--recipes", "demo")
    assert done.returncode != 0 and "two or more presets" in done.stderr


def test_unknown_recipe_is_one_line(tmp_path):
    done = bench(tmp_path, "--recipes", "demo_long,nosuch", *TINY)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error:") and "nosuch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # two fresh processes compile the network: minutes on a CPU
def test_recipes_compile_lever(tmp_path):
    done = bench(tmp_path, "--recipes", "demo_long,demo", "--compile", *TINY, "--steps", "2",
                 "--repeats", "1", "--out", "c.json")
    assert done.returncode == 0, done.stderr[-2000:]
    compiled = json.loads((tmp_path / "c.json").read_text())["levers"]["compile"]
    assert set(compiled) == {"ratio", "cold_compile_s", "warm_compile_s", "note"}
    assert all(positive(compiled[key]) for key in ("ratio", "cold_compile_s", "warm_compile_s"))


def test_the_performance_page_shows_the_kept_recipes_run():
    """docs/performance.md quotes the kept quiet run of ``--recipes demo_long,demo --compile`` as the
    script prints it."""
    kept = json.loads((REPO / "docs" / "bench" / "recipes.json").read_text())
    table = _bench_script().recipes_table(kept, _bench_script().DEFAULT_REPEATS)
    assert table in (REPO / "docs" / "performance.md").read_text()
    assert kept["recipes"]["demo"]["sweep_vs_first"] < 1 and set(kept["levers"]) >= {"compile", "channels_last"}
