"""The package's layers: no import cycle anywhere (imports inside functions included), and a
training job (a single run, or one job of a sweep) never imports the analysis' matplotlib or
scipy: they cost seconds per job and belong to the aggregation."""
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


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for top in PACKAGES for p in (REPO / top).rglob("*.py")}
    modules = set(files)
    return {name: _imports(path, modules) - {name} for name, path in files.items()}


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


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_models_import_nothing_of_the_data():
    """A model knows no dataset: the image size it is built for comes from the run's config
    (benchmark.blocks, benchmark.networks), not from importing the dataset loaders."""
    graph = import_graph()
    models = [m for m in graph if m.startswith("benchmark.models")]
    assert len(models) > 5
    assert {m: sorted(i for i in _reachable(graph, m) if i.startswith("benchmark.data")) for m in models} == \
        {m: [] for m in models}


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
