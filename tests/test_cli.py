"""The command line: one real run end to end, and bad input answered in one line.

Bad input is checked in-process (``run_main``: the console script's entry point without
starting an interpreter each time); the complete run stays a real subprocess.
"""
import json

import pytest

from conftest import run_cli, run_main

RESULT_KEYS = {"label", "treatment", "n", "finetune", "source", "target", "seed", "status", "reason",
               "metrics", "history", "wall_s", "config", "versions", "classes_A", "classes_B"}


def test_transfer_run_writes_a_complete_result(tmp_path):
    proc = run_cli("experiment=smoke", "treatment=transfer", "n=3", "finetune=true", "target=B",
                   "seed=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert RESULT_KEYS <= set(result)
    assert (result["label"], result["source"], result["status"]) == ("AnB+3", "A", "ok")
    assert set(result["metrics"]) == {"top1", "top5", "loss", "top1_best"}
    assert len(result["history"]) == result["config"]["train"]["epochs"]
    assert "baseA epoch 1/2" in proc.stdout and "AnB+3 epoch 2/2" in proc.stdout
    assert set(result["classes_A"]).isdisjoint(result["classes_B"])


@pytest.mark.parametrize("args, expected", [
    (["dataset=imagenet_typo"], "unknown dataset 'imagenet_typo'"),
    (["model=resnet9000"], "unknown model 'resnet9000'"),
    (["split=nope"], "unknown split 'nope'"),
    (["hydra/launcher=nope"], "unknown hydra/launcher 'nope'"),
    (["trian.lr=0.1"], "unknown config key 'trian.lr'"),
    (["treatment=transfer", "n=9"], ("n=9 is outside 0..7", "model=convnet8", "conv1, conv2")),
    (["treatment=transfer", "n=-1"], "n=-1 is not a layer"),
    (["n=all"], "n=all sweeps every layer and needs a sweep (-m)"),
    (["-m", "treatment=transfer", "n=1,9"], "n=9 is outside 0..7 for model=convnet8"),
    (["treatment=external", "n=2"], "set exactly one of source.checkpoint=PATH or source.weights=NAME"),
    (["treatment=transfer", "n=2", "source.weights=IMAGENET1K_V1"],
     "copies from a base network trained here, not from it; use treatment=external"),
    (["treatment=external", "n=2", "source.checkpoint=/nonexistent.pt"],
     "/nonexistent.pt (source.checkpoint or source.weights) does not exist"),
    (["treatment=selffer", "n=0"], "copies no layers"),
    (["treatment=base", "n=3"], "treatment=base copies no layers"),
    (["treatment=random", "n=2", "finetune=true"], "keeps its n random layers frozen"),
    (["target=C"], "target=C is not a class half"),
    (["treatment=tranfer"], "treatment=tranfer is unknown"),
    (["train.lr=-0.1"], "train.lr=-0.1 must be positive"),
    (["train.epochs=0"], "train.epochs=0 must be at least 1"),
    (["train.optimizer=adam"], "train.optimizer=adam is unknown"),
    (["model.width=abc"], "model.width=abc is not a whole number; write e.g. model.width="),
    (["freeze.bn=maybe"], "freeze.bn=maybe is unknown"),
    (["wandb.mode=loud"], "wandb.mode=loud is unknown"),
    (["split=family", "split.families_A=[nosuch]"], "unknown families ['nosuch']"),
    (["data.train_per_class=100000"], "data.train_per_class=100000"),
    (["data.target_fraction=1.5"], "data.target_fraction=1.5 must be in (0, 1]"),
    (["data.target_fraction=0.5", "data.train_per_class=3"], "both set"),
    (["n=abc=("], "cannot parse the command line"),
    (["hydra.sweeper.params.n=1,2"], "sweeps a hydra.* setting"),
    (["split=classes", "split.A=[nosuch]"], "names ['nosuch'], not classes of this dataset"),
    (["split=classes", "split.A=[bars_0]", "split.B=[bars_0]"], "more than once"),
    (["split=classes", "split.A=[]"], "class half A is empty"),
    (["split=classes", "split.file=/nonexistent.txt"], "split.file=/nonexistent.txt does not exist"),
    (["dataset=cifar10", "data.root=/nonexistent"], "dataset=cifar10: data not found"),
    (["hydra.run.dir=/etc/hostname/sub"], "cannot write the output directory"),
], ids=lambda value: " & ".join(value) if isinstance(value, tuple) else None)
def test_bad_input_ends_in_one_clear_line(tmp_path, args, expected):
    proc = run_main(*_options_first("experiment=smoke", f"hydra.run.dir={tmp_path / 'run'}",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}", *args), cwd=tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    expected = (expected,) if isinstance(expected, str) else expected
    assert lines and lines[-1].startswith("error: "), proc.stderr[-1500:]
    assert all(text in lines[-1] for text in expected), proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    assert not list((tmp_path / "sweep").glob("*/result.json"))


def _options_first(*args: str) -> list[str]:
    """Options (``-m``) before the overrides: argparse takes the overrides as one run of
    positional arguments. The overrides keep their order (the last of a key wins)."""
    return sorted(args, key=lambda arg: not arg.startswith("-"))


def test_finished_run_is_not_redone(tmp_path, shared_cache):
    args = ("experiment=smoke", "treatment=base", f"hydra.run.dir={tmp_path / 'run'}")
    env = {"TRANSFERBENCH_CACHE": str(shared_cache)}
    assert run_main(*args, cwd=tmp_path, env=env).returncode == 0
    first = (tmp_path / "run" / "result.json").read_bytes()
    again = run_main(*args, cwd=tmp_path, env=env)
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert (tmp_path / "run" / "result.json").read_bytes() == first
