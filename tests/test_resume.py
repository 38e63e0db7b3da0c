"""Runs killed with SIGKILL mid-training resume bit-identically; results are never overwritten."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, run_main
from wandb_records import run_id_and_steps

# a few hundred ms per epoch, so a kill lands mid-training
SLOW_SMOKE = ("experiment=smoke", "treatment=selffer", "n=2", "finetune=true", "model.width=16",
              "dataset.params.train_per_class=300", "train.epochs=8")


def _start(run_dir: Path, cache: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TRANSFERBENCH_CACHE": str(cache), "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "benchmark", *SLOW_SMOKE, *args,
                             f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc: subprocess.Popen, appears: callable, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not appears() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(run_dir: Path, cache: Path, *args: str) -> dict:
    proc = run_cli(*SLOW_SMOKE, *args, f"hydra.run.dir={run_dir}", cwd=run_dir.parent,
                   env={"TRANSFERBENCH_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((run_dir / "result.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, Path]:
    """The result of an uninterrupted run (the same for every kill point) and its base cache."""
    root = tmp_path_factory.mktemp("uninterrupted")
    return _finish(root / "run", root / "cache"), root / "cache"


@pytest.mark.slow  # minutes of real end-to-end work: .ci/run runs it after the default suite
@pytest.mark.parametrize("kill_in", ["base", "target"])
def test_sigkilled_run_resumes_to_the_identical_result(tmp_path, uninterrupted, kill_in):
    reference, reference_cache = uninterrupted
    run_dir, cache = tmp_path / "killed", tmp_path / "cache"
    run_dir.mkdir()
    if kill_in == "target":  # its base network is trained already (by the uninterrupted run)
        shutil.copytree(reference_cache, cache, ignore=shutil.ignore_patterns("*.lock"))
    checkpoint = (lambda: any(cache.glob("*/checkpoint.pt"))) if kill_in == "base" else \
        (lambda: (run_dir / "checkpoint.pt").exists())
    _kill_when(_start(run_dir, cache), checkpoint)
    assert checkpoint(), "the run ended before it could be killed mid-training"
    assert not (run_dir / "result.json").exists()
    resumed = _finish(run_dir, cache)
    assert resumed["history"] == reference["history"]
    assert resumed["metrics"] == reference["metrics"]
    assert not (run_dir / "checkpoint.pt").exists() and not any(cache.glob("*/checkpoint.pt"))


@pytest.mark.slow  # a SIGKILLed run and its resumption: .ci/run runs it
def test_a_killed_run_continues_its_own_wandb_run_and_a_finished_one_opens_none(tmp_path):
    run_dir, cache = tmp_path / "killed", tmp_path / "cache"
    run_dir.mkdir()
    offline = ("wandb.mode=offline", "train.epochs=5")
    log = run_dir / "__main__.log"
    # killed in epoch 3 (its log line comes before its checkpoint): 2 epochs are checkpointed
    third_epoch = lambda: log.exists() and "BnB+2 epoch 3/" in log.read_text()  # noqa: E731
    _kill_when(_start(run_dir, cache, *offline), third_epoch, timeout=900)
    assert third_epoch() and not (run_dir / "result.json").exists(), "not killed in epoch 3"
    result = _finish(run_dir, cache, *offline)
    _finish(run_dir, cache, *offline)  # finished: skipped, no W&B run opened
    files = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2, files
    killed, resumed = files
    (_, killed_steps), (resumed_id, resumed_steps) = run_id_and_steps(killed, closed=False), run_id_and_steps(resumed)
    # the killed process may not have written even its run record: W&B names the file by the id
    assert [f.stem for f in files] == [f"run-{resumed_id}"] * 2
    first = resumed_steps[0]  # the checkpoint's last epoch, reported again after the kill
    assert resumed_steps == list(range(first, len(result["history"]) + 1)), (killed_steps, resumed_steps)
    assert first > 1 and all(step <= first for step in killed_steps), (killed_steps, resumed_steps)


def test_result_of_another_configuration_is_never_overwritten(tmp_path, shared_cache):
    args = ("experiment=smoke", "treatment=base", f"hydra.run.dir={tmp_path / 'run'}")

    def run(*more: str):
        return run_main(*args, *more, cwd=tmp_path, env={"TRANSFERBENCH_CACHE": str(shared_cache)})
    assert run().returncode == 0
    first = (tmp_path / "run" / "result.json").read_bytes()
    other = run("train.lr=0.01")
    assert other.returncode != 0
    assert other.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "different configuration" in other.stderr and "Traceback" not in other.stderr
    assert (tmp_path / "run" / "result.json").read_bytes() == first
    same_but_offline = run("wandb.mode=offline", "threads=1")
    assert same_but_offline.returncode == 0  # execution-only settings are the same configuration


def test_damaged_or_foreign_checkpoint_is_never_loaded(tmp_path):
    import torch

    from benchmark.store.checkpoints import Checkpoint

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1), torch.Generator()

    path = tmp_path / "checkpoint.pt"
    model, optimizer, scheduler, generator = fresh()
    with torch.no_grad():
        model.weight.add_(1.0)
    Checkpoint(path, "run-1").save(model, optimizer, scheduler, generator, [{"epoch": 1}])
    restored = fresh()
    assert Checkpoint(path, "run-1").restore(*restored) == [{"epoch": 1}]
    assert torch.equal(restored[0].weight, model.weight)
    assert Checkpoint(path, "run-2").restore(*fresh()) == []       # another configuration's
    path.write_bytes(path.read_bytes()[:-20])                        # truncated
    untouched = fresh()
    assert Checkpoint(path, "run-1").restore(*untouched) == []
    assert not torch.equal(untouched[0].weight, model.weight)
