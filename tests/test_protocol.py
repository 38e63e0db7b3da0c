"""The protocol's vocabulary, depth from the model, and results it does not know."""
import csv
import json

import pytest

from benchmark.analysis import aggregate
from benchmark.errors import UserError
from benchmark.protocol import (BASE, NOT_ENOUGH_RUNS, SERIES, TREATMENTS, VERDICTS, check_layer,
                                combination_problem, every_layer, run_label, series_of)
from conftest import numbers_only, run_main


@pytest.mark.parametrize("treatment, n, finetune, target, label, series", [
    ("base", 0, False, "B", "baseB", "baseB"),
    ("selffer", 3, False, "B", "BnB3", "BnB"),
    ("selffer", 5, True, "A", "AnA+5", "BnB+"),
    ("transfer", 3, True, "B", "AnB+3", "AnB+"),
    ("transfer", 2, False, "A", "BnA2", "AnB"),
    ("external", 4, True, "B", "XnB+4", "XnB+"),
    ("random", 2, False, "B", "RnB2", "random"),
])
def test_labels_and_series_come_from_one_vocabulary(treatment, n, finetune, target, label, series):
    assert run_label(treatment, n, finetune, target) == label
    assert series_of(treatment, finetune).key == series
    assert combination_problem(treatment, n, finetune) is None


def test_every_treatment_has_its_series_and_every_series_a_treatment():
    for name, treatment in TREATMENTS.items():
        finetunes = (False, True) if treatment.finetunable else (False,)
        assert {series_of(name, f).key for f in finetunes} <= {s.key for s in SERIES}
    assert all(s.treatment in TREATMENTS for s in SERIES) and SERIES[0].key == BASE
    assert len({s.key for s in SERIES}) == len(SERIES)
    with pytest.raises(ValueError, match="unknown treatment 'distill'"):
        series_of("distill", False)


def test_depth_comes_from_the_model():
    blocks = ["stem", "layer1", "layer2", "layer3", "layer4"]
    check_layer(5, blocks, "resnet18")  # n = L: every block copied, only the head retrained
    with pytest.raises(UserError, match="n=6 is outside 0..5 for model=resnet18, whose 5 "
                                        "transferable blocks are stem, layer1"):
        check_layer(6, blocks, "resnet18")
    assert every_layer(5) == [1, 2, 3, 4, 5]


def _result(path, **fields):
    path.parent.mkdir(parents=True)
    base = {"label": "baseB", "treatment": "base", "n": 0, "finetune": False, "target": "B",
            "seed": 0, "status": "ok", "metrics": {"top1": 0.8}, "dataset": "synthetic",
            "model": "convnet8", "split": "random", "blocks": ["conv1", "conv2"]}
    path.write_text(json.dumps({**base, **fields}))


def test_a_results_directory_with_an_unknown_treatment_is_reported_not_pooled(tmp_path):
    _result(tmp_path / "baseB-seed0" / "result.json")
    _result(tmp_path / "AnB1-seed0" / "result.json", label="AnB1", treatment="transfer", n=1,
            metrics={"top1": 0.7})
    _result(tmp_path / "DnB1-seed0" / "result.json", label="DnB1", treatment="distill", n=1,
            metrics={"top1": 0.1})
    report = aggregate(tmp_path, analysis=numbers_only())
    assert report.summary["series"]["AnB"]["1"]["values"] == [0.7]
    assert report.summary["runs"]["total"] == 2
    problem, = report.summary["problems"]
    assert problem["path"] == "DnB1-seed0/result.json" and "unknown treatment 'distill'" in problem["error"]
    assert report.summary["blocks"] == {"1": "conv1", "2": "conv2"}
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {r["label"] for r in rows} == {"baseB", "AnB1"}


def test_resnet18_sweep_over_every_layer_ends_in_its_curve(tmp_path):
    """n=all through the protocol sweeper: the layers of resnet18 by stage (L = 5)."""
    sweep = tmp_path / "sweep"
    proc = run_main("-m", "experiment=smoke", "model=resnet18", "model.width=8",
                    "treatment=base,transfer", "n=all", "finetune=false", "wandb.mode=disabled",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(sweep / "results.csv")))
    assert [(r["label"], r["block"]) for r in rows] == [  # baseA: the source base, reported too
        ("baseA", ""), ("baseB", ""), ("AnB1", "stem"), ("AnB2", "layer1"), ("AnB3", "layer2"), ("AnB4", "layer3"),
        ("AnB5", "layer4")]
    assert all(r["status"] == "ok" for r in rows)
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["blocks"] == {"1": "stem", "2": "layer1", "3": "layer2", "4": "layer3", "5": "layer4"}
    assert sorted(summary["series"]["AnB"]) == ["1", "2", "3", "4", "5"]
    assert (sweep / "generality.png").stat().st_size > 0
    assert "layer4" in (sweep / "table.tex").read_text()


def test_no_treatment_series_or_verdict_name_is_written_outside_the_protocol():
    """Every module derives treatments, series and the findings' verdicts from
    benchmark/protocol.py. Exempt: keys of result and summary fields (``summary["base"]``), the
    seed tags of derive_seed (which must never change), and the split named random
    (benchmark/schema/split.py), a homonym."""
    import ast

    from conftest import REPO

    names = set(TREATMENTS) | {s.key for s in SERIES} | set(VERDICTS) | {NOT_ENOUGH_RUNS}
    homes = {REPO / "benchmark" / "protocol.py", REPO / "benchmark" / "schema" / "split.py"}
    written = []
    for path in sorted((REPO / "benchmark").rglob("*.py")) + sorted((REPO / "hydra_plugins").rglob("*.py")):
        if path in homes:
            continue
        tree = ast.parse(path.read_text())
        exempt = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript):
                exempt.add(id(node.slice))
            elif isinstance(node, ast.Dict):
                exempt |= {id(k) for k in node.keys if k is not None}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "derive_seed":
                exempt |= {id(a) for a in node.args}
        written += [f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and node.value in names and id(node) not in exempt]
    assert written == []
