"""A sweep that would run and report nothing is refused before it starts: base networks alone are
read block by block only by the measures, so with every measure off they measure nothing."""
import pytest

from benchmark.errors import UserError
from benchmark.preflight import check_overrides
from conftest import run_main


@pytest.mark.parametrize("overrides", [
    ["experiment=probe", "analysis.measures=[]"],
    ["treatment=base", "seed=0,1", "analysis.measures=[]"],
])
def test_a_base_only_sweep_with_every_measure_off_is_refused(overrides, tmp_path):
    with pytest.raises(UserError, match=r"trains base networks only \(treatment=base\).*would measure nothing"):
        check_overrides([*overrides, f"hydra.sweep.dir={tmp_path}"], multirun=True)


@pytest.mark.parametrize("overrides, multirun", [
    (["experiment=probe"], True),                                           # its measures on
    (["treatment=base,transfer", "n=1", "analysis.measures=[]"], True),     # a curve of accuracies
    (["treatment=base", "analysis.measures=[]"], False),                    # one run: a base network to keep
])
def test_sweeps_that_measure_or_copy_layers_pass(overrides, multirun, tmp_path):
    check_overrides([*overrides, f"hydra.sweep.dir={tmp_path}", f"hydra.run.dir={tmp_path}"], multirun=multirun)


def test_the_probe_sweep_without_measures_is_one_error_line_and_runs_nothing(tmp_path):
    result = run_main("-m", "experiment=probe", "analysis.measures=[]", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                      cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "sweep").exists()
