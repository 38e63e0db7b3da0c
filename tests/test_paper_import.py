"""The paper's own networks as the positive control: Yosinski et al.'s validation histories imported
as run records (python -m benchmark.reference.import_runs) and aggregated like any sweep give the
paper's table; a bad file ends in one error line and loses no record already imported."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from conftest import REPO

from benchmark.analysis import aggregate, default_findings, findings_rows, load_reference
from benchmark.analysis.collect import collect
from benchmark.analysis.compare import findings_across
from benchmark.analysis.findings import findings_settings
from benchmark.reference.import_runs import main

PAPER_FILE = REPO.parent / "shared" / "reference" / "yosinski2014" / "validation_history.csv.gz"
needs_paper_file = pytest.mark.skipif(
    not PAPER_FILE.is_file(), reason=f"the paper's validation histories are not at {PAPER_FILE} "
                                     "(shared/reference/yosinski2014/ next to the repository)")
REFERENCE = load_reference("yosinski2014")
RANDOM, NATMAN, WHOLE = "yosinski2014-random", "yosinski2014-natural_manmade", "yosinski2014-all"


# ---------------------------------------------------------------- the paper's file

@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("paper")
    assert main([str(out), "--history", str(PAPER_FILE)]) == 0
    return out


@pytest.fixture(scope="module")
def summaries(paper_runs: Path) -> dict[str, dict]:
    return {name: aggregate(paper_runs / name, metric="mean_highest").summary for name in (RANDOM, NATMAN, WHOLE)}


def _records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.rglob("result.json")}


@needs_paper_file
def test_the_docs_quote_the_findings_the_paper_s_networks_get(paper_runs):
    """README, docs/verdicts.md and docs/validation.md show the findings table of the paper's own
    networks as the current rules give it (findings 1-4, 6 on the random split, 5 across both)."""
    settings = findings_settings(default_findings())
    random, natman = (collect(paper_runs / name).results for name in (RANDOM, NATMAN))
    table = findings_rows(findings_across(random, natman, "mean_highest", settings))
    for page in ("README.md", "docs/verdicts.md", "docs/validation.md"):
        assert table in (REPO / page).read_text(), page


@needs_paper_file
def test_every_protocol_network_becomes_one_record_and_reduced_data_ones_none(paper_runs):
    by_sweep = {name: len(list((paper_runs / name).glob("*/result.json"))) for name in (RANDOM, NATMAN, WHOLE)}
    # 8 bases, 28 selffers, 56 transfers, 20 fine-tuned; 2 bases, 14 transfers; netbase, 7 random
    assert by_sweep == {RANDOM: 112, NATMAN: 16, WHOLE: 8}
    assert not [name for name in _records(paper_runs) if name.startswith("reduced")]


@needs_paper_file
def test_the_random_split_gives_the_papers_table_exactly(summaries):
    summary = summaries[RANDOM]
    assert (round(summary["base"]["mean"], 4), summary["base"]["count"]) == (0.6251, 4)  # 4 splits, 8 networks
    table = {key: {n: round(point["mean"], 4) for n, point in series.items()}
             for key, series in summary["series"].items()}
    assert table == REFERENCE["series"]  # BnB, BnB+, AnB, AnB+ at n = 1..7, and nothing else


@needs_paper_file
def test_the_natural_manmade_split_gives_the_papers_transfer_drop(summaries):
    summary = summaries[NATMAN]
    drop = {n: round(100 * (point["mean"] - summary["base"]["mean"]), 1)
            for n, point in summary["series"]["AnB"].items()}
    assert drop == REFERENCE["anb_minus_base_points"]["dissimilar"]


@needs_paper_file
def test_the_random_weights_control_stands_apart_with_its_1000_class_base(summaries):
    summary = summaries[WHOLE]
    assert round(summary["base"]["mean"], 4) == REFERENCE["full_1000_classes"]
    (control,) = summary["series"].values()
    assert {n: round(p["mean"], 3) for n, p in control.items() if int(n) <= 2} == \
        REFERENCE["random_frozen"]["values"]
    low, high = REFERENCE["random_frozen"]["n_ge_3_range"]
    assert all(low <= p["mean"] <= high for n, p in control.items() if int(n) >= 3)


@needs_paper_file
def test_the_sanity_checks_read_the_histories_in_epochs(summaries, paper_runs):
    # the paper's bases ran 450,000 iterations to their plateau: no check fires
    assert summaries[RANDOM]["sanity"]["warnings"] == []
    record = _records(paper_runs)["half0B"]
    first, last = record["history"][0], record["history"][-1]
    assert (first["iteration"], first["epoch"], last["iteration"], last["epoch"]) == (1000, 0.4, 450000, 180.0)


@needs_paper_file
def test_a_record_says_where_it_was_imported_from_and_no_commit_trained_it(paper_runs):
    record = _records(paper_runs)["transfer-ft0A0B_1_3"]
    assert (record["label"], record["treatment"], record["finetune"], record["source"], record["target"],
            record["seed"], record["split"], record["block"]) == ("AnB+3", "transfer", True, "A", "B", 0,
                                                                  "random", "conv3")
    assert record["git_commit"] is None
    assert record["config"]["imported"]["sha256"] == hashlib.sha256(PAPER_FILE.read_bytes()).hexdigest()
    assert record["config"]["imported"]["network"] == "transfer-ft0A0B_1_3"
    assert record["metrics"]["top1"] == record["history"][-1]["val_top1"]


@needs_paper_file
def test_importing_again_writes_nothing_and_changes_nothing(paper_runs, capsys):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paper_runs.rglob("result.json")}
    assert main([str(paper_runs), "--history", str(PAPER_FILE)]) == 0
    assert "0 records written, 136 already there" in capsys.readouterr().out
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paper_runs.rglob("result.json")} == before


# ---------------------------------------------------------------- constructed files

def _evaluations(network: str, top1: float = 0.5) -> list[str]:
    return [f"{network},{1000 * i},{top1 + i / 1000:.4f},{3 - i / 10:.2f}" for i in range(1, 11)]


GOOD = ["network,iteration,top1,loss", *_evaluations("half0A"), *_evaluations("half0B"),
        *_evaluations("transfer0A0B_1_1", 0.4)]  # lines 2-11, 12-21, 22-31


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """An output directory holding a good partial import."""
    out = tmp_path / "out"
    assert main([str(out), "--history", str(_write(tmp_path / "good.csv.gz", GOOD)), "--partial"]) == 0
    return out


def _snapshot(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _one_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_constructed_file_imports_with_its_roles(imported):
    records = _records(imported)
    assert {name: (r["label"], r["n"], r["source"]) for name, r in records.items()} == {
        "half0A": ("baseA", 0, None), "half0B": ("baseB", 0, None), "transfer0A0B_1_1": ("AnB1", 1, "A")}
    assert records["transfer0A0B_1_1"]["source_network"] == "yosinski2014:half0A"


@pytest.mark.parametrize("edit, expected", [
    (lambda lines: lines + _evaluations("transfer0A1B_1_1"), "line 32 (network transfer0A1B_1_1): network "),
    (lambda lines: lines + _evaluations("transfer1A1B_1_2"),
     "line 32 (network transfer1A1B_1_2): its base networks half1A and half1B are not in the file"),
    (lambda lines: lines + _evaluations("transfer0A0B_1_9"), "line 32 (network transfer0A0B_1_9): layer 9 is not "
                                                             "one of caffenet's layers 1..7"),
    (lambda lines: lines + _evaluations("transfer0A0B_1_0"), "line 32 (network transfer0A0B_1_0): layer 0 is not"),
    (lambda lines: lines[:5] + ["half0A,5000,abc,2.5"] + lines[6:], "line 6 (network half0A): top1 'abc' is not"),
    (lambda lines: lines[:5] + ["half0A,5000,0.5,nan"] + lines[6:], "line 6 (network half0A): loss 'nan' is not"),
    (lambda lines: lines[:5] + ["half0A,5k,0.5,2.5"] + lines[6:], "line 6 (network half0A): iteration '5k' is not"),
    (lambda lines: lines[:5] + ["half0A,5000,0.5"] + lines[6:], "line 6 (network half0A): 3 fields, expected 4"),
    (lambda lines: lines + ["half0B,1000,0.5,2.5"], "line 32 (network half0B): iteration 1000 appears twice"),
    (lambda lines: ["network,iteration,top1"] + lines[1:], "line 1: the header is"),
], ids=["unknown name", "missing base", "layer beyond the model", "layer 0", "non-numeric top1", "nan loss",
        "non-numeric iteration", "missing field", "repeated iteration", "wrong header"])
def test_a_bad_row_is_one_error_line_naming_it_and_loses_nothing(imported, tmp_path, capsys, edit, expected):
    before = _snapshot(imported)
    bad = _write(tmp_path / "bad.csv.gz", edit(list(GOOD)))
    assert expected in _one_error(capsys, [str(imported), "--history", str(bad), "--partial"])
    assert _snapshot(imported) == before


def test_a_file_with_fewer_networks_than_the_papers_needs_partial(imported, tmp_path, capsys):
    before = _snapshot(imported)
    error = _one_error(capsys, [str(imported), "--history", str(_write(tmp_path / "few.csv.gz", GOOD))])
    assert "holds 3 networks and 30 evaluations, the paper's file 148 and 62857" in error and "--partial" in error
    assert _snapshot(imported) == before


@pytest.mark.parametrize("content", [None, b"network,iteration,top1,loss\n", b"\x1f\x8b\x08truncated"],
                         ids=["missing", "not gzip", "truncated gzip"])
def test_a_missing_or_non_gzip_file_is_one_error_line(imported, tmp_path, capsys, content):
    path = tmp_path / "history.csv.gz"
    if content is not None:
        path.write_bytes(content)
    before = _snapshot(imported)
    assert "as a gzip file" in _one_error(capsys, [str(imported), "--history", str(path), "--partial"])
    assert _snapshot(imported) == before


def test_a_different_record_already_there_is_kept(imported, tmp_path, capsys):
    path = imported / "yosinski2014-random" / "half0B" / "result.json"
    changed = json.loads(path.read_text()) | {"wall_s": 12.0}
    path.write_text(json.dumps(changed))
    before = _snapshot(imported)
    history = _write(tmp_path / "good.csv.gz", GOOD)
    assert "already holds another record" in _one_error(capsys, [str(imported), "--history", str(history),
                                                                  "--partial"])
    assert _snapshot(imported) == before


def test_an_output_directory_that_cannot_be_written_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("a file, not a directory")
    history = _write(tmp_path / "good.csv.gz", GOOD)
    assert "cannot write" in _one_error(capsys, [str(out), "--history", str(history), "--partial"])
    assert out.read_text() == "a file, not a directory"
