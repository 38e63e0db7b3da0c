"""The documentation: the site builds strictly, the configuration reference is the schema's, and
every kept sweep re-aggregates to its kept outputs and to every number the docs quote from it."""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.analysis import aggregate, compare_sweeps, findings_text
from benchmark.analysis.keep import MAX_BYTES, PROVENANCE, REPORTS, keep_sweep
from benchmark.config import compose_config
from benchmark.config_reference import PAGE, reference_page
from conftest import REPO, numbers_only

DOCS = REPO / "docs"
KEPT = sorted(p.parent for p in (DOCS / "sweeps").glob(f"*/{PROVENANCE}"))
QUOTED = DOCS / "sweeps" / "quoted.yaml"
README_LIMIT = 220  # lines: the README is read in five minutes; the rest is in docs/
DEMO_FIGURE = "docs/img/generality-demo.png"
ZOO_COVERAGE = DOCS / "zoo" / "coverage.jsonl"  # the rows docs/zoo.md shows


def test_the_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_configuration_reference_is_current():
    assert (DOCS / PAGE).read_text() == reference_page(), \
        "docs/configuration-reference.md is stale: run python scripts/config_reference.py"


def test_the_readme_is_short_and_links_only_to_what_exists():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LIMIT
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http") and target != DEMO_FIGURE:
            assert (REPO / target).exists(), f"README links to {target}, which does not exist"
    assert DEMO_FIGURE in readme
    assert not re.search(r"\bissue \d+", readme, re.IGNORECASE)


def test_the_readme_s_demo_figure_is_in_place():
    assert (REPO / DEMO_FIGURE).is_file()


def test_the_demo_tables_the_docs_show_are_the_kept_demo_s():
    """README command 1's output is the kept demo sweep's findings (3 seeds); docs/validation.md
    shows the findings tables of it and of the long recipe's kept sweep."""
    kept = json.loads((DOCS / "sweeps" / "demo-random" / "summary.json").read_text())
    assert findings_text(kept) in (REPO / "README.md").read_text()
    for name in ("demo-random", "demo_long-random"):
        table = "\n".join(line for line in (DOCS / "sweeps" / name / "findings.md").read_text().splitlines()
                          if line.startswith("|"))
        assert table in (DOCS / "validation.md").read_text(), name


# docs/validation.md's worlds table: each recipe's kept sweeps, world 0 (README command 1's) first
WORLDS = {recipe: [name for name in (recipe + "-random", *(f"{recipe}-random-world{w}" for w in (2, 3, 4)))
                   if (DOCS / "sweeps" / name).is_dir()] for recipe in ("demo", "demo_long")}


@pytest.mark.parametrize("recipe", WORLDS)
def test_the_worlds_table_is_the_kept_sweeps_compared(recipe, tmp_path):
    """Each recipe's row per world in docs/validation.md is python -m benchmark.analysis on its
    kept sweeps, each judged by the settings it was run with, and by the runs its preset runs
    today: a world kept before ``random_layers`` left out RnB at n = 1, 2 is judged the same
    without them (no finding reads them)."""
    dirs = [_runs_of_the_preset(DOCS / "sweeps" / name, recipe, tmp_path) for name in WORLDS[recipe]]
    markdown = compare_sweeps(dirs, tmp_path / "compared", analysis=numbers_only())["markdown"].read_text()
    grid = markdown.split("## Verdicts side by side\n\n")[1].split("\n\n")[0]
    assert grid in (DOCS / "validation.md").read_text(), f"docs/validation.md lacks the {recipe} worlds table"


def _runs_of_the_preset(kept: Path, recipe: str, tmp_path: Path) -> Path:
    """A copy of ``kept`` without the random-control runs at layers ``experiment=recipe`` no longer
    runs (``hydra.sweeper.random_layers``)."""
    layers = compose_config(f"experiment={recipe}", hydra_config=True).hydra.sweeper.random_layers
    copy = tmp_path / kept.name
    shutil.copytree(kept, copy)
    for result in copy.glob("*/result.json"):
        record = json.loads(result.read_text())
        if layers is not None and record["treatment"] == "random" and record["n"] not in layers:
            shutil.rmtree(result.parent)
    return copy


def test_no_page_names_an_internal_issue_or_its_history():
    lead_owned = {"validation.md"}  # the lead's page, cleaned there
    for page in DOCS.glob("*.md"):
        if page.name not in lead_owned:
            assert not re.search(r"\bissue \d+|Before 20\d\d-", page.read_text()), page.name


def test_the_zoo_page_shows_the_kept_coverage_rows():
    """docs/zoo.md shows the summary and the table scripts/zoo_coverage.py prints from the kept rows,
    and docs/models.md counts the families they cover."""
    printed = subprocess.run([sys.executable, str(REPO / "scripts" / "zoo_coverage.py"), "--out", str(ZOO_COVERAGE),
                              "--table"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr[-2000:]
    summary, table = printed.stdout.strip().split("\n\n", 1)
    assert f"{summary}." in (DOCS / "zoo.md").read_text() and table in (DOCS / "zoo.md").read_text(), \
        "docs/zoo.md is stale: paste python scripts/zoo_coverage.py --out docs/zoo/coverage.jsonl --table"
    families = {json.loads(line)["family"] for line in ZOO_COVERAGE.read_text().splitlines()}
    assert f"timm's {len(families)} families" in (DOCS / "models.md").read_text()
    counts = dict(re.findall(r"(\w+) px: (\d+) of \d+", summary))
    assert (f"at 32 px {counts['32']} of {len(families)} families train, at 64 px {counts['64']} of "
            f"{len(families)}, at their own size all {counts['native']} that fit") in (REPO / "README.md").read_text()


@pytest.mark.parametrize("kept", KEPT, ids=[k.name for k in KEPT])
def test_a_kept_sweep_holds_only_small_outputs(kept):
    files = [p for p in kept.rglob("*") if p.is_file()]
    allowed = {*REPORTS, PROVENANCE, "result.json"}
    assert {p.name for p in files} <= allowed
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    assert f"({kept.name}/findings.md)" in (DOCS / "sweeps" / "index.md").read_text(), \
        f"docs/sweeps/index.md does not link the kept sweep {kept.name}"


@pytest.mark.parametrize("kept", KEPT, ids=[k.name for k in KEPT])
def test_a_kept_sweep_re_aggregates_to_its_kept_reports(kept, tmp_path):
    copy = _re_aggregated(kept, tmp_path)
    for name in ("results.csv", "findings.md"):
        assert (copy / name).read_text() == (kept / name).read_text(), \
            f"{kept.name}/{name} differs from its re-aggregation: python -m benchmark.analysis.keep --refresh {kept}"
    assert json.loads((copy / "summary.json").read_text()) == json.loads((kept / "summary.json").read_text())


def test_every_quoted_number_is_what_its_kept_sweep_gives(tmp_path):
    quotes = yaml.safe_load(QUOTED.read_text()) or []
    assert quotes, "docs/sweeps/quoted.yaml lists no quoted number"
    sources = {}
    for quote in quotes:
        data, paths = _quoted_source(quote, sources, tmp_path)
        values = [_at(data, path) for path in (paths if isinstance(paths, list) else [paths])]
        assert quote["format"].format(*values) == quote["quoted"], quote
        assert quote["quoted"] in (REPO / quote["page"]).read_text(), \
            f"{quote['page']} no longer quotes {quote['quoted']!r}: update docs/sweeps/quoted.yaml"


def _quoted_source(quote: dict, sources: dict, tmp_path: Path) -> tuple[dict, str | list]:
    """What a quote reads, made once per source: one kept sweep's summary.json (``sweep``,
    ``summary``), or the cheap_answer.json of kept sweeps compared (``compared``, ``cheap_answer``),
    as python -m benchmark.analysis DIR DIR ... writes it. The kept summaries are what this version
    aggregates (test_a_kept_sweep_re_aggregates_to_its_kept_reports), so they are read as kept."""
    if "compared" in quote:
        names = tuple(quote["compared"])
        if names not in sources:
            dirs = [DOCS / "sweeps" / name for name in names]
            summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
            paths = compare_sweeps(dirs, tmp_path / "-".join(names), summaries=summaries, analysis=numbers_only())
            sources[names] = json.loads(paths["cheap_answer_json"].read_text())
        return sources[names], quote["cheap_answer"]
    if quote["sweep"] not in sources:
        sources[quote["sweep"]] = json.loads((DOCS / "sweeps" / quote["sweep"] / "summary.json").read_text())
    return sources[quote["sweep"]], quote["summary"]


def test_keeping_a_sweep_copies_its_small_outputs_and_never_a_network(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "AnB3-seed0").mkdir(parents=True)
    (sweep / "AnB3-seed0" / "result.json").write_text("{}")
    (sweep / "AnB3-seed0" / "checkpoint.pt").write_bytes(b"weights")
    for name in ("summary.json", "results.csv", "findings.md", "generality.png"):
        (sweep / name).write_text("x")
    kept = keep_sweep(sweep, tmp_path / "kept")
    names = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert names == ["AnB3-seed0/result.json", "findings.md", PROVENANCE, "results.csv", "summary.json"]


def _re_aggregated(kept: Path, tmp_path: Path) -> Path:
    """A copy of the kept sweep, aggregated anew by this version."""
    copy = tmp_path / kept.name
    shutil.copytree(kept, copy)
    summary = json.loads((kept / "summary.json").read_text())
    aggregate(copy, metric=summary.get("metric", "top1"), analysis=numbers_only())
    return copy


def _at(data, path: str | list):
    """The value at ``path`` of ``data``: dotted (a number in the path indexes a list), or a list of
    keys where a key holds a dot."""
    for part in (path if isinstance(path, list) else path.split(".")):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data
