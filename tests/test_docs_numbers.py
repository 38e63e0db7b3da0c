"""docs/paper-data.md's numbers are what the paper's own networks give through the tool: imported
(python -m benchmark.reference.import_runs) and aggregated by the paper's rule (mean_highest)."""
from collections import Counter
from pathlib import Path

from conftest import REPO, numbers_only
from test_paper_import import NATMAN, RANDOM, WHOLE, needs_paper_file, paper_runs  # noqa: F401 (a fixture)

from benchmark.analysis import aggregate
from benchmark.analysis.collect import collect
from benchmark.analysis.curve import metric_value
from benchmark.protocol import series_of

PAGE = REPO / "docs" / "paper-data.md"
METRIC = "mean_highest"


def _networks(sweep: Path) -> tuple[Counter, list[float], int]:
    """Per (series, n), how many networks; the base networks' scores; how many records."""
    records = [r for r in collect(sweep).results if r.ok]
    counts = Counter((series_of(r.treatment, r.finetune).key, r.n) for r in records if r.treatment != "base")
    return counts, [metric_value(r, METRIC) for r in records if r.treatment == "base"], len(records)


def _cell(summary: dict, counts: Counter, key: str, n: int) -> str:
    return f"{summary['series'][key][str(n)]['mean']:.4f} ({counts[key, n]})"


@needs_paper_file
def test_the_paper_data_page_shows_what_the_import_and_the_aggregation_give(paper_runs):  # noqa: F811
    page = PAGE.read_text()
    summaries = {name: aggregate(paper_runs / name, metric=METRIC, analysis=numbers_only()).summary for name in (RANDOM, NATMAN, WHOLE)}
    random, natman, whole = (summaries[name] for name in (RANDOM, NATMAN, WHOLE))
    (counts, bases, records), (nat_counts, nat_bases, nat_records), (all_counts, all_bases, all_records) = \
        (_networks(paper_runs / name) for name in (RANDOM, NATMAN, WHOLE))
    expected = [f"`OUT_DIR/yosinski2014-random` ({records} records)",
                f"baseB: {random['base']['mean']:.4f} ({len(bases)} networks, {min(bases):.4f}-{max(bases):.4f})",
                f"`OUT_DIR/yosinski2014-natural_manmade` ({nat_records} records); its base: "
                f"{natman['base']['mean']:.4f} ({len(nat_bases)} networks)",
                f"`OUT_DIR/yosinski2014-all` ({all_records} records); the 1000-class base (`netbase`): "
                f"{whole['base']['mean']:.4f} ({len(all_bases)} network)"]
    for n in range(1, 8):
        block = random["blocks"][str(n)]
        expected.append(f"| {n} | {block} | " + " | ".join(_cell(random, counts, key, n)
                                                            for key in ("BnB", "BnB+", "AnB", "AnB+")) + " |")
        anb, base = natman["series"]["AnB"][str(n)]["mean"], natman["base"]["mean"]
        random_drop = random["series"]["AnB"][str(n)]["mean"] - random["base"]["mean"]
        expected.append(f"| {n} | {_cell(natman, nat_counts, 'AnB', n)} | {100 * (anb - base):+.1f} | "
                        f"{100 * random_drop:+.2f} |")
        expected.append(f"| {n} | {_cell(whole, all_counts, 'random', n)} |")
    pooled = aggregate(paper_runs, metric=METRIC, analysis=numbers_only()).summary["base"]
    expected.append(f"gives a baseB of {len(bases) + len(nat_bases) + len(all_bases)} networks in "
                    f"{pooled['count']} splits ({pooled['mean']:.4f},")
    page = " ".join(page.split("\n"))  # a quoted phrase may break across lines
    missing = [text for text in expected if text not in page]
    assert not missing, f"docs/paper-data.md does not show what the paper's networks give: {missing}"
