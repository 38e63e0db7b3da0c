"""methods.md on a real sweep: every value its paragraph states is the one the config and the run
records hold; results.csv names the commit and the settings that differ between runs."""
import csv
import datetime
import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from benchmark.analysis.methods import METRIC_WORDS, methods_text
from benchmark.protocol import METRICS
from conftest import built_once, compose_config, numbers_only, run_main

GRID = ["treatment=base,transfer", "n=1,2", "seed=0,1", "wandb.mode=disabled"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A smoke sweep (one for the session's workers, read only)."""
    return built_once(tmp_path_factory, "methods-sweep", _sweep) / "sweep"


def _sweep(cwd: Path) -> None:
    proc = run_main("-m", "experiment=smoke", *GRID, f"hydra.sweep.dir={cwd / 'sweep'}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def pooled(tmp_path_factory, sweep: Path) -> Path:
    """A copy of the sweep (``pooled/sweep``) and one more base run with another learning rate
    beside it, aggregated together (``pooled/``): two recipes in one curve."""
    return built_once(tmp_path_factory, "methods-pooled", lambda cwd: _pooled(sweep, cwd)) / "pooled"


def _pooled(sweep: Path, cwd: Path) -> None:
    from benchmark.analysis import aggregate

    shutil.copytree(sweep, cwd / "pooled" / "sweep")
    proc = run_main("experiment=smoke", "train.lr=0.1", "wandb.mode=disabled",
                    f"hydra.run.dir={cwd / 'pooled' / 'other'}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    aggregate(cwd / "pooled", analysis=numbers_only())


def _records(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.rglob("result.json"))]


def test_every_value_of_the_paragraph_is_the_config_s_and_the_records(sweep):
    text = (sweep / "methods.md").read_text()
    paragraph = text.split("\n\n")[2]
    cfg = compose_config("experiment=smoke")
    records = _records(sweep)
    first = records[0]
    params = cfg.dataset.params
    classes = params.num_families * params.classes_per_family // 2
    assert f"synthetic dataset were split into two disjoint halves A and B of {classes} and {classes} classes" \
        in paragraph
    assert (f"{params.train_per_class} training and {params.val_per_class} held-out images per class at "
            f"{params.image_size} x {params.image_size} px") in paragraph
    assert first["images"] == {"train": classes * params.train_per_class,
                               "val": classes * params.val_per_class, "size": params.image_size}
    blocks = first["blocks"]
    assert f"L = {len(blocks)} transferable blocks ({', '.join(blocks)})" in paragraph
    assert f"width={cfg.model.width}" in paragraph and f"fc_width={cfg.model.fc_width}" in paragraph
    train = cfg.train
    assert (f"for {train.epochs} epochs with SGD (momentum {train.momentum}, weight decay "
            f"{train.weight_decay}), batch size {train.batch_size}") in paragraph
    assert f"fine-tuned at {cfg.finetune_lr_scale} times the learning rate" in paragraph
    assert "seeds 0-1 (2 seeds" in paragraph and "at n = 1-2 copied blocks" in paragraph
    assert f"AnB ({sum(r['label'].startswith('AnB') for r in records)} networks)" in paragraph
    assert METRIC_WORDS["top1"] in paragraph
    findings = cfg.analysis.findings
    assert all(f"{key} = {value}" in paragraph for key, value in findings.items()), paragraph
    versions = first["versions"]
    assert all(f"{name} {version}" in paragraph for name, version in versions.items())
    assert {"python", "torch", "torchvision", "timm", "transferbench"} <= set(versions)
    assert first["git_commit"] in paragraph and isinstance(first["git_dirty"], bool)
    assert first["machine"]["cpu"] in paragraph and f"{first['machine']['cores']} cores" in paragraph
    total = round(sum(r["wall_s"] for r in records), 1)
    assert str(datetime.timedelta(seconds=round(total))) in paragraph


def test_methods_list_each_finding_s_test_and_the_commands(sweep):
    text = (sweep / "methods.md").read_text()
    summary = json.loads((sweep / "summary.json").read_text())
    for finding in summary["findings"]["findings"]:
        assert f"{finding['id']}. {finding['statement']}: {finding['test']}" in text
    multirun = OmegaConf.load(sweep / "multirun.yaml")
    assert "python -m benchmark -m " + " ".join(multirun.hydra.overrides.task) in text
    assert f"python -m benchmark.analysis {sweep}\n" in text
    assert "@inproceedings{yosinski2014transferable" in text and "@software{transferbench" in text
    assert "differ between the runs" not in text  # one recipe


def test_results_csv_names_the_commit_and_the_settings_that_differ(pooled):
    with open(pooled / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    commits = {r["git_commit"] for r in _records(pooled / "sweep")}
    assert {row["git_commit"] for row in rows} == commits
    assert {row["train.lr"] for row in rows} == {"0.05", "0.1"}
    assert "train.epochs" not in rows[0]  # the same in every run: no column
    assert "`train.lr`: 0.05, 0.1" in (pooled / "methods.md").read_text()


def test_a_changed_threshold_becomes_an_option_of_the_re_aggregation(sweep, tmp_path):
    from benchmark.analysis import aggregate, default_findings

    copy = tmp_path / "copy"
    copy.mkdir()
    for path in sweep.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".yaml"):
            (copy / path.relative_to(sweep)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(sweep)).write_bytes(path.read_bytes())
    report = aggregate(copy, findings={**default_findings(), "alpha": 0.01}, analysis=numbers_only())
    assert f"python -m benchmark.analysis {copy} --set=analysis.findings.alpha=0.01" in \
        report.paths["methods"].read_text()


def test_every_metric_has_its_words():
    assert set(METRIC_WORDS) == set(METRICS)


def test_a_sweep_without_a_finished_run_gives_a_short_note(tmp_path):
    assert "nothing to describe" in methods_text([], {}, None, tmp_path)
