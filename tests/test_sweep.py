"""A real multirun: base networks trained once, aggregation, W&B offline, resume, joblib."""
import json
import re
from pathlib import Path

from conftest import run_cli
from wandb_records import summary_and_run

GRID = ["treatment=base,selffer,transfer", "n=0,2,5", "finetune=false,true", "target=B"]
OUTPUTS = ["results.csv", "summary.json", "generality.png", "generality.pdf", "table.tex"]


def _sweep(tmp_path: Path, *extra: str):
    return run_cli("-m", "experiment=smoke", *GRID, f"hydra.sweep.dir={tmp_path / 'sweep'}", *extra,
                   cwd=tmp_path, timeout=600)


def _base_trainings(sweep: Path) -> list[str]:
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))
    return re.findall(r"training (base[AB])", logs)


def test_sweep_trains_each_base_once_aggregates_and_resumes(tmp_path):
    proc = _sweep(tmp_path, "wandb.mode=offline")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    runs = sorted(p.parent.name for p in sweep.glob("*/result.json"))
    assert len(runs) == 1 + 2 * 2 * 2  # baseB + {BnB, AnB} x {frozen, +} x n in {2, 5}
    assert sorted(_base_trainings(sweep)) == ["baseA", "baseB"]
    assert all((sweep / name).stat().st_size > 0 for name in OUTPUTS)
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["runs"] == {"total": 9, "ok": 9, "failed": 0, "duplicates": 0}
    assert "9/9 runs done" in proc.stdout and "wandb sync" in proc.stdout

    run_file = next((sweep / "AnB+2-seed0" / "wandb").glob("offline-run-*/run-*.wandb"))
    values, run = summary_and_run(run_file)
    assert run == {"name": "AnB+2/seed0", "group": "smoke-synthetic-random", "job_type": "transfer"}
    result = json.loads((sweep / "AnB+2-seed0" / "result.json").read_text())
    assert float(values["top1"]) == result["metrics"]["top1"]
    summary_run = next((sweep / "summary" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert summary_and_run(summary_run)[1]["job_type"] == "summary"

    # an interrupted sweep: one run lost, one result corrupt -> only those two run again
    (sweep / "AnB5-seed0" / "result.json").unlink()
    (sweep / "BnB+2-seed0" / "result.json").write_text("{not json")
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/result.json")}
    again = _sweep(tmp_path, "wandb.mode=disabled")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(_base_trainings(sweep)) == ["baseA", "baseB"]  # nothing retrained
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.parent.name != "BnB+2-seed0")
    assert json.loads((sweep / "AnB5-seed0" / "result.json").read_text())["status"] == "ok"
    assert json.loads((sweep / "BnB+2-seed0" / "result.json").read_text())["status"] == "ok"


def test_joblib_launcher_runs_in_parallel_without_training_a_base_twice(tmp_path):
    proc = _sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "wandb.mode=disabled",
                  "threads=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert len(list(sweep.glob("*/result.json"))) == 9
    assert sorted(_base_trainings(sweep)) == ["baseA", "baseB"]
    assert (sweep / "summary.json").exists()
