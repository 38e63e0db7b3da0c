"""Citable: CITATION.cff is valid and agrees with the package (version, licence), LICENSE is the
licence pyproject names, and the command line says its version."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import benchmark
from conftest import REPO, run_cli, run_main


def _cffconvert() -> str | None:
    """cffconvert beside this interpreter (the venv's) or on PATH."""
    beside = Path(sys.executable).parent / "cffconvert"
    return str(beside) if beside.exists() else shutil.which("cffconvert")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_citation_cff_is_valid():
    tool = _cffconvert()
    if tool is None:
        pytest.skip("cffconvert is not installed (pip install -e '.[test]' installs it)")
    proc = subprocess.run([tool, "--validate", "-i", str(REPO / "CITATION.cff")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_citation_names_the_package_version_licence_and_repository():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    project = _pyproject()["project"]
    assert citation["version"] == project["version"] == benchmark.__version__
    assert citation["license"] == project["license"]["text"] == "MIT"
    assert citation["repository-code"].startswith("https://")
    assert str(citation["date-released"])


def test_every_place_names_the_same_repository():
    from benchmark.analysis.methods import REPOSITORY

    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    site = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert citation["repository-code"] == REPOSITORY == _pyproject()["project"]["urls"]["Repository"] \
        == site["repo_url"]
    assert f"pip install git+{REPOSITORY}" in (REPO / "README.md").read_text()
    pages = [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    assert not [p.name for p in pages if "github.com/OWNER" in p.read_text()]


def test_license_file_is_the_licence_pyproject_names():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith(f"{_pyproject()['project']['license']['text']} License")


def test_the_console_script_says_its_version(tmp_path):
    result = run_main("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"transferbench {benchmark.__version__}")


def test_python_m_benchmark_says_its_version(tmp_path):
    proc = run_cli("--version", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"transferbench {benchmark.__version__}"
