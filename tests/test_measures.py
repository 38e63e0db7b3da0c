"""Per-block measures as plug-ins, and the one typed run record they write into: a measure the
runs did not take is taken later by the aggregation from the saved networks, with the numbers
the runs would have written; every result.json of an earlier version still reads."""
import json
import re

import pytest

from benchmark.analysis import aggregate, default_analysis
from benchmark.measures import MEASURES
from benchmark.store.record import RECORD_VERSION, RunRecord
from benchmark.store.results import read_result
from benchmark.sweep.later import complete
from conftest import run_main

GRID = ("-m", "experiment=smoke", "treatment=base,transfer", "n=0,2", "wandb.mode=disabled")


def _sweep(tmp_path, name, *overrides):
    sweep = tmp_path / name
    proc = run_main(*GRID, *overrides, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_a_measure_the_runs_did_not_take_is_taken_later_from_their_saved_networks(tmp_path):
    measured = _sweep(tmp_path, "measured")
    skipped = _sweep(tmp_path, "skipped", "analysis.measures=[]")
    base = json.loads((skipped / "baseB-seed0" / "result.json").read_text())
    assert base["similarity"] is None  # the run took no measure ...
    summary = json.loads((skipped / "summary.json").read_text())
    assert summary["similarity"] is None and not (skipped / "similarity.png").exists()
    report = aggregate(skipped, analysis=default_analysis(), complete=complete)  # ... cka is taken now
    later, during = report.summary["similarity"], json.loads((measured / "summary.json").read_text())["similarity"]
    assert later["base_vs_base"] == during["base_vs_base"]  # same networks, same seeded images
    assert later["vs_source"] == {}  # copying runs keep no trained network: not taken after the fact
    assert report.paths["similarity_png"].stat().st_size > 0
    assert json.loads((skipped / "baseB-seed0" / "result.json").read_text()) == base  # untouched


def test_every_measure_is_one_registered_plug_in_with_its_own_keys():
    assert {"cka", "linear_probe", "knn", "logme"} <= set(MEASURES)
    analysis = default_analysis()
    for name, measure in MEASURES.items():
        assert measure.name == name and (measure.settings_key is None or measure.settings_key in analysis)
    assert list(analysis.measures) == ["cka"]


def test_an_unknown_measure_is_one_error_line(tmp_path):
    proc = run_main("experiment=smoke", "analysis.measures=[cka,logmee]", f"hydra.run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "run" / "result.json").exists()
    assert proc.stderr.strip().splitlines() == [
        "error: analysis.measures names logmee, which is no measure; use some of cka, knn, linear_probe, "
        "logme, e.g. analysis.measures=[cka]"]


def test_the_record_round_trips_and_reads_every_earlier_version(tmp_path):
    proc = run_main("experiment=smoke", "treatment=transfer", "n=2", f"hydra.run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["version"] == RECORD_VERSION and written["similarity"]["vs_source"]
    record = RunRecord.from_json(written)
    assert record.to_json() == written and record.measures["similarity"] == written["similarity"]
    version1 = {k: v for k, v in written.items() if k != "version"}  # before records were typed
    assert RunRecord.from_json(version1) == record
    (tmp_path / "run" / "result.json").write_text(json.dumps(version1))
    assert read_result(tmp_path / "run" / "result.json") == record
    again = run_main("experiment=smoke", "treatment=transfer", "n=2", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=tmp_path)  # a run finished by the earlier version is not trained again
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert "epoch 1/" not in again.stdout + again.stderr


@pytest.mark.parametrize("data, problem", [
    ({"label": "AnB1", "treatment": "transfer", "n": 1, "target": "B", "seed": 0, "status": "ok",
      "version": RECORD_VERSION + 1}, "newer than this transferbench reads"),
    ({"label": "AnB1", "treatment": "transfer", "n": "1", "target": "B", "seed": 0, "status": "ok"},
     "n must be an integer"),
    ({"label": "AnB1", "treatment": "transfer", "target": "B", "seed": 0, "status": "ok"}, "missing field(s) n"),
])
def test_a_record_that_cannot_be_read_says_why(data, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        RunRecord.from_json(data)


def test_a_measure_without_a_report_of_its_own_is_summarised_per_block():
    """A new measure module needs no line in the analysis: its per-block lists are summarised per
    run label (mean and CI per block); CKA and the readouts have reports of their own."""
    from benchmark.analysis.measure_reports import MeasureReport, ReadoutReport, SimilarityReport, report_of
    from benchmark.measures import Measure

    class Sharpness(Measure):
        name = record_key = settings_key = "sharpness"

    records = [RunRecord.from_json({"label": "baseB", "treatment": "base", "n": 0, "target": "B", "seed": seed,
                                    "status": "ok", "sharpness": {"base_vs_base": [0.1 * seed, 1.0], "images": 64}})
               for seed in (1, 2, 3)]
    report = report_of(Sharpness())
    assert type(report) is MeasureReport
    summary = report.summarise(records, default_analysis())
    assert summary["baseB"]["base_vs_base"]["1"]["mean"] == pytest.approx(0.2)
    assert summary["baseB"]["base_vs_base"]["2"]["values"] == [1.0, 1.0, 1.0]
    assert report.summarise([], default_analysis()) is None
    assert isinstance(report_of(MEASURES["cka"]), SimilarityReport)
    assert all(isinstance(report_of(MEASURES[name]), ReadoutReport) for name in ("linear_probe", "knn", "logme"))
