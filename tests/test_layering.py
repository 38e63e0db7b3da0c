"""The package's layers: no import cycle anywhere (imports inside functions included, and the
package ``__init__`` that importing a module runs), the per-block measures a leaf below the
run, the sweep and the analysis, the analysis free of networks and training, and a training job
(a single run, or one job of a sweep) never importing the analysis' matplotlib or scipy: they
cost seconds per job and belong to the aggregation."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGES = ("benchmark", "hydra_plugins")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file; ``from P import name`` counts
    as importing ``P.name`` where that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return found & modules


def _packages_run(importer: str, imported: str, modules: set[str]) -> set[str]:
    """The package ``__init__`` modules that importing ``imported`` from ``importer`` runs: every
    enclosing package of ``imported`` that does not enclose ``importer`` (its own packages are
    already being imported)."""
    parts = imported.split(".")
    enclosing = {".".join(parts[:i]) for i in range(1, len(parts))}
    return {p for p in enclosing & modules if not (importer == p or importer.startswith(p + "."))}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for top in PACKAGES for p in (REPO / top).rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        direct = _imports(path, modules)
        graph[name] = (direct | {p for i in direct for p in _packages_run(name, i, modules)}) - {name}
    return graph


def reachable(graph: dict[str, set[str]], start: set[str]) -> dict[str, str]:
    """Every module that importing ``start`` may import, transitively, each with the module that
    imports it first (to name the path in a failure)."""
    found, todo = {}, sorted(start)
    while todo:
        module = todo.pop()
        for nxt in sorted(graph[module] - found.keys() - start):
            found[nxt] = module
            todo.append(nxt)
    return found


def _path(found: dict[str, str], start: set[str], module: str) -> str:
    chain = [module]
    while chain[-1] not in start:
        chain.append(found[chain[-1]])
    return " <- ".join(chain)


def _reaching(graph: dict[str, set[str]], package: str, forbidden: tuple[str, ...],
              exempt: tuple[str, ...] = ()) -> list[str]:
    start = {m for m in graph if (m == package or m.startswith(package + ".")) and m not in exempt}
    found = reachable(graph, start)
    return sorted(_path(found, start, m) for m in found if m.startswith(forbidden))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 50 and graph["benchmark.run"]  # the walk sees the package
    assert cycles(graph) == []


def test_the_schema_imports_nothing_above_it():
    graph = import_graph()
    allowed = ("benchmark.schema", "benchmark.errors", "benchmark.protocol", "benchmark.reference")
    schema = [m for m in graph if m.startswith("benchmark.schema")]
    assert {m: sorted(i for i in graph[m] if not i.startswith(allowed)) for m in schema} == \
        {m: [] for m in schema}


def test_the_import_graph_follows_package_inits_and_imports_inside_functions():
    graph = import_graph()
    assert "benchmark.sweep" in graph["benchmark.analysis.__main__"]  # from benchmark.sweep.later import ...
    assert "benchmark.measures" not in graph["benchmark.measures.cka"]  # its own package: already running
    assert "benchmark.config" in graph["benchmark.analysis"]  # imported inside default_analysis()


def test_the_measures_are_a_leaf_that_computes_and_records():
    """benchmark/measures/ imports nothing from the analysis, the run, the networks, the sweep or
    training, directly or through what it imports: what reports a measure is the analysis'
    (benchmark/analysis/measure_reports.py), what takes a measure later from saved networks the
    sweep's (benchmark/sweep/later.py)."""
    forbidden = tuple(f"benchmark.{m}" for m in ("analysis", "run", "networks", "sweep", "train"))
    assert _reaching(import_graph(), "benchmark.measures", forbidden) == []


def test_the_analysis_pulls_in_no_networks_training_or_run():
    """The analysis (the library; its command line, ``__main__``, sits on top and hands it the sweep's
    way of taking measures later) never imports what builds or trains a network."""
    forbidden = tuple(f"benchmark.{m}" for m in ("run", "networks", "sweep", "train", "surgery",
                                                 "feature_cache", "sources"))
    assert _reaching(import_graph(), "benchmark.analysis", forbidden, exempt=("benchmark.analysis.__main__",)) == []


def test_the_models_import_nothing_of_the_data():
    """A model knows no dataset: the image size it is built for comes from the run's config
    (benchmark.blocks, benchmark.networks), not from importing the dataset loaders."""
    assert len([m for m in import_graph() if m.startswith("benchmark.models.")]) > 5
    assert _reaching(import_graph(), "benchmark.models", ("benchmark.data",)) == []


def test_a_training_job_imports_neither_matplotlib_nor_scipy(tmp_path):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", "experiment=smoke",
                           "treatment=transfer", "n=2", f"cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "result.json").exists()
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "torch" in imported and "benchmark" in imported  # the importtime lines were read
    assert not {"matplotlib", "scipy"} & imported
