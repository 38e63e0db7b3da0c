"""The command line: one real run end to end, and bad input answered in one line."""
import json

import pytest

from conftest import run_cli

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
    (["treatment=transfer", "n=9"], "n=9 is outside 0..7"),
    (["treatment=transfer", "n=-1"], "n=-1 is outside 0..7"),
    (["treatment=selffer", "n=0"], "copies no layers"),
    (["treatment=base", "n=3"], "treatment=base copies no layers"),
    (["treatment=random", "n=2", "finetune=true"], "keeps its n random layers frozen"),
    (["target=C"], "target=C is not a class half"),
    (["treatment=tranfer"], "treatment=tranfer is unknown"),
    (["train.lr=-0.1"], "train.lr=-0.1 must be positive"),
    (["train.epochs=0"], "train.epochs=0 must be at least 1"),
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
])
def test_bad_input_ends_in_one_clear_line(tmp_path, args, expected):
    proc = run_cli("experiment=smoke", f"hydra.run.dir={tmp_path / 'run'}", *args, cwd=tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and expected in lines[-1], proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()


def test_finished_run_is_not_redone(tmp_path):
    args = ("experiment=smoke", "treatment=base", f"hydra.run.dir={tmp_path / 'run'}")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    first = (tmp_path / "run" / "result.json").read_bytes()
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert (tmp_path / "run" / "result.json").read_bytes() == first
