"""A real multirun: base networks trained once, aggregation, W&B offline, resume, joblib."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest

from conftest import NO_FIGURES, base_trainings, run_cli, run_main, sweep_numbers
from benchmark.analysis import verdict_label
from hydra_plugins.transferbench_sweeper import POINT_KEYS, composition_cover, waves
from wandb_records import summary_and_run

GRID = ["treatment=base,selffer,transfer", "n=0,2,5", "finetune=false,true", "target=B"]
OUTPUTS = ["results.csv", "summary.json", "generality.png", "generality.pdf", "table.tex", "findings.md"]


def _sweep(tmp_path: Path, *extra: str, run: Callable = run_main, grid: Sequence[str] = GRID):
    """The grid's sweep in-process (``run_main``), or as ``run`` runs it."""
    return run("-m", "experiment=smoke", *grid, f"hydra.sweep.dir={tmp_path / 'sweep'}", *extra, cwd=tmp_path)


def test_runs_that_copy_no_base_of_the_sweep_run_in_the_first_wave_after_the_base_runs():
    def job(treatment: str, n: int, finetune: bool = False):
        return [f"treatment={treatment}", f"n={n}", f"finetune={finetune}"], (treatment, n, finetune)
    base, random, external = job("base", 0), job("random", 2), job("external", 1, True)
    selffer, selffer_plus, transfer = job("selffer", 1), job("selffer", 1, True), job("transfer", 3)
    jobs = [selffer, random, transfer, base, selffer_plus, external]
    assert waves(jobs) == [[base[0] + ["warm_sources=true"], external[0], random[0]],
                           [selffer_plus[0], selffer[0], transfer[0]]]  # longest training first
    without_transfer = [j for j in jobs if j is not transfer]
    assert waves(without_transfer)[0] == [base[0], external[0], random[0]]
    assert waves([random]) == [[random[0]]]


def test_the_jobs_composed_before_a_batch_cover_each_setting_and_each_point_value():
    def job(*items: str) -> list[str]:
        return ["experiment=smoke", *items]
    batch = [job(f"treatment={t}", f"n={n}", f"finetune={f}", f"seed={s}", "target=B")
             for t in ("selffer", "transfer") for n in (1, 2, 5) for f in ("false", "true") for s in (0, 1, 2)]
    batch += [job("treatment=base", "n=0", "warm_sources=true", f"seed={s}") for s in (0, 1)]
    batch += [job("treatment=selffer", "n=1", "model.width=8")]
    cover = composition_cover(batch)
    assert all(chosen in batch for chosen in cover) and len(cover) < len(batch) / 3

    def needs(jobs: list[list[str]]) -> set:
        return {(tuple(i for i in j if i.split("=")[0] not in POINT_KEYS), i) for j in jobs for i in j}
    assert needs(cover) == needs(batch)  # every setting, and every point value within each
    assert job("treatment=selffer", "n=1", "model.width=8") in cover
    assert composition_cover([]) == []


def _layers_swept(tmp_path: Path, *grid: str, treatments: str = "base,selffer") -> list[str]:
    """The runs a smoke sweep of ``treatments`` at n = 1, 2 and ``grid`` wrote."""
    sweep = tmp_path / "sweep"
    proc = run_main("-m", "experiment=smoke", f"treatment={treatments}", "n=1,2", *grid, NO_FIGURES,
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sorted(p.parent.name for p in sweep.glob("*/result.json"))


def test_a_grid_of_layers_without_0_keeps_its_base_run_once(tmp_path):
    runs = _layers_swept(tmp_path, "finetune=false")
    assert runs == ["BnB1-seed0", "BnB2-seed0", "baseB-seed0"]  # the reference of the curve, at n=0


def test_layer_lists_keep_fine_tuned_and_random_runs_at_their_layers_only(tmp_path):
    runs = _layers_swept(tmp_path, "finetune=false,true", "hydra.sweeper.finetuned_layers=[2]",
                         "hydra.sweeper.random_layers=[1]", treatments="base,selffer,random")
    assert runs == ["BnB+2-seed0", "BnB1-seed0", "BnB2-seed0", "RnB1-seed0", "baseB-seed0"]


@pytest.mark.parametrize("key,treatments", [("finetuned_layers", "base,selffer"), ("random_layers", "random")])
def test_a_listed_layer_the_model_lacks_is_one_error_line_and_runs_nothing(tmp_path, key, treatments):
    sweep = tmp_path / "sweep"
    proc = run_main("-m", "experiment=smoke", f"treatment={treatments}", "n=all", "finetune=false,true",
                    f"hydra.sweeper.{key}=[2,9]", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith(f"error: hydra.sweeper.{key} names layer 9, but "
                                          "model=convnet8 has 7 transferable blocks (conv1, conv2")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list(sweep.glob("*/result.json"))


def test_sweep_trains_each_base_once_aggregates_and_resumes(tmp_path):
    proc = _sweep(tmp_path, "wandb.mode=offline")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    runs = sorted(p.parent.name for p in sweep.glob("*/result.json"))
    assert len(runs) == 1 + 2 * 2 * 2  # baseB + {BnB, AnB} x {frozen, +} x n in {2, 5}
    assert sorted(base_trainings(sweep)) == ["baseA", "baseB"]
    assert all((sweep / name).stat().st_size > 0 for name in OUTPUTS)
    summary = json.loads((sweep / "summary.json").read_text())
    # baseA, trained as the source of the AnB runs, is reported as a run of its own
    assert summary["runs"] == {"total": 10, "ok": 10, "failed": 0, "duplicates": 0}
    assert summary["source_base"]["count"] == 1
    with open(sweep / "results.csv") as rows:
        base_a = [row for row in csv.DictReader(rows) if row["label"] == "baseA"]
    assert len(base_a) == 1 and float(base_a[0]["top1"]) == summary["source_base"]["mean"]
    assert "9/9 runs done" in proc.stdout and "wandb sync" in proc.stdout
    assert "| 6 | random frozen layers do far worse" in proc.stdout  # the findings table

    run_file = next((sweep / "AnB+2-seed0" / "wandb").glob("offline-run-*/run-*.wandb"))
    values, run = summary_and_run(run_file)
    assert run == {"name": "AnB+2/seed0", "group": "smoke-synthetic-random", "job_type": "transfer"}
    result = json.loads((sweep / "AnB+2-seed0" / "result.json").read_text())
    assert float(values["top1"]) == result["metrics"]["top1"]
    summary_run = next((sweep / "summary" / "wandb").glob("offline-run-*/run-*.wandb"))
    logged, summary_job = summary_and_run(summary_run)
    assert summary_job["job_type"] == "summary"
    for finding in summary["findings"]["findings"]:  # W&B carries each verdict as findings.md prints it
        assert json.loads(logged[f"finding{finding['id']}"]) == verdict_label(finding)

    # an interrupted sweep: one run lost, one result corrupt -> only those two run again
    (sweep / "AnB5-seed0" / "result.json").unlink()
    (sweep / "BnB+2-seed0" / "result.json").write_text("{not json")
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/result.json")}
    again = _sweep(tmp_path, "wandb.mode=disabled", NO_FIGURES)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(base_trainings(sweep)) == ["baseA", "baseB"]  # nothing retrained
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.parent.name != "BnB+2-seed0")
    assert json.loads((sweep / "AnB5-seed0" / "result.json").read_text())["status"] == "ok"
    assert json.loads((sweep / "BnB+2-seed0" / "result.json").read_text())["status"] == "ok"


def test_joblib_launcher_runs_in_parallel_without_training_a_base_twice(tmp_path):
    # baseB (which trains baseA too, the transfer's source), then BnB2 and AnB2 at once: neither trains a base
    proc = _sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "wandb.mode=disabled", "threads=1",
                  NO_FIGURES, grid=["treatment=base,selffer,transfer", "n=0,2", "finetune=false", "target=B"],
                  run=partial(run_cli, timeout=600))  # a process of its own: joblib's workers outlive the sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert sorted(p.parent.name for p in sweep.glob("*/result.json")) == ["AnB2-seed0", "BnB2-seed0", "baseB-seed0"]
    assert sorted(base_trainings(sweep)) == ["baseA", "baseB"]
    assert (sweep / "summary.json").exists()


def _local_sweep(sweep: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "TRANSFERBENCH_CACHE": str(cache), "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "benchmark", "-m", "experiment=smoke", *GRID,
                             "hydra/launcher=local", "wandb.mode=disabled", "threads=1",
                             f"hydra.sweep.dir={sweep}"], cwd=sweep.parent, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.slow  # minutes of real end-to-end work: .ci/run runs it after the default suite
def test_local_launcher_sweep_killed_and_resumed_equals_an_uninterrupted_one(tmp_path):
    reference = _local_sweep(tmp_path / "reference", tmp_path / "cache_ref")
    assert reference.wait(timeout=600) == 0, reference.stdout.read()[-3000:]
    sweep = tmp_path / "sweep"
    proc = _local_sweep(sweep, tmp_path / "cache")
    deadline = time.time() + 300
    while len(list(sweep.glob("*/result.json"))) < 3 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and every job it started
    proc.wait()
    assert 0 < len(list(sweep.glob("*/result.json"))) < 9, "the sweep was not interrupted"
    assert not (sweep / "results.csv").exists()
    resumed = _local_sweep(sweep, tmp_path / "cache")
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()[-3000:]
    assert len(list(sweep.glob("*/result.json"))) == 9
    assert sweep_numbers(sweep) == sweep_numbers(tmp_path / "reference")
    assert sorted(set(base_trainings(sweep))) == ["baseA", "baseB"]


def test_a_diverging_run_is_recorded_failed_and_the_sweep_goes_on(tmp_path):
    proc = run_main("-m", "experiment=smoke", "treatment=selffer", "n=2", "finetune=false,true",
                    "finetune_lr_scale=1e12", "wandb.mode=disabled", NO_FIGURES,
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    failed = json.loads((sweep / "BnB+2-seed0" / "result.json").read_text())
    assert failed["status"] == "failed" and "loss became" in failed["reason"]
    assert json.loads((sweep / "BnB2-seed0" / "result.json").read_text())["status"] == "ok"
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["runs"]["failed"] == 1 and summary["failed"][0]["label"] == "BnB+2"
    assert "failed run BnB+2 seed 0" in proc.stdout
    rows = list(csv.DictReader(open(sweep / "results.csv")))
    assert {r["label"]: r["status"] for r in rows} == {"BnB2": "ok", "BnB+2": "failed"}


def test_unreachable_wandb_never_fails_a_run_and_is_given_up_once(tmp_path):
    proc = run_cli("-m", "experiment=smoke", "treatment=base,selffer", "n=0,3", "wandb.mode=online",
                   "wandb.init_timeout=1", NO_FIGURES, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
                   env={"WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = [json.loads(p.read_text())["status"] for p in (tmp_path / "sweep").glob("*/result.json")]
    assert statuses == ["ok", "ok"]
    assert (proc.stdout + proc.stderr).count("W&B start failed") == 1
    assert (tmp_path / "sweep" / "summary.json").exists()
