"""The sweep on a live Slurm cluster (``scripts/slurm_local.sh start`` makes one on this
machine): base runs first, jobs requeued mid-training, a node lost mid-run, a time limit
shorter than a run. Every sweep's results equal the same grid run in-process (CPU training
is deterministic). Marked ``slurm``: run with ``pytest -m slurm`` once the cluster answers."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from filelock import FileLock
from omegaconf import OmegaConf

from conftest import base_trainings, run_main, sweep_numbers

pytestmark = pytest.mark.slurm

# one CPU and a little memory per job, no GPU: fits a laptop-sized node
SLURM = ("hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10", "threads=1",
         "wandb.mode=disabled")
# about a second per epoch on 2 free cores, so that requeues and kills land mid-training
SLOW = ("model.width=16", "dataset.params.train_per_class=400", "train.epochs=30")


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (start a cluster: scripts/slurm_local.sh start)"
    try:
        subprocess.run(["sinfo"], capture_output=True, check=True, timeout=30)
    except (subprocess.SubprocessError, OSError) as error:
        return f"the Slurm cluster does not answer (sinfo: {error}); scripts/slurm_local.sh start"
    return None


@pytest.fixture(autouse=True)
def _cluster(tmp_path_factory) -> Iterator[None]:
    """The cluster to this test alone: its one node has room for one sweep, and a test kills
    and restarts its slurmd, so the workers of a ``pytest -n`` session take turns (a lock file
    in the session's temporary folder, which its workers share)."""
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)
    with FileLock(tmp_path_factory.getbasetemp().parent / "slurm-cluster.lock"):
        yield


def _grid(name: str, *grid: str) -> tuple[str, ...]:
    return ("experiment=smoke", f"sweep_name={name}", *grid)


def _start(sweep: Path, cache: Path, *args: str) -> subprocess.Popen:
    """``python -m benchmark ARGS`` on the cluster, in the background; its output goes to
    ``sweep.out`` beside the sweep (kept for a look after the test; a re-run starts it anew)."""
    env = {**os.environ, "TRANSFERBENCH_CACHE": str(cache), "TQDM_DISABLE": "1"}
    if _output(sweep).exists():
        _output(sweep).rename(_output(sweep).with_suffix(".out.1"))
    with open(_output(sweep), "w") as out:
        return subprocess.Popen([sys.executable, "-m", "benchmark", "-m", *SLURM, *args,
                                 f"hydra.sweep.dir={sweep}"], cwd=sweep.parent, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _output(sweep: Path) -> Path:
    return sweep.parent / "sweep.out"


def _finish(proc: subprocess.Popen, sweep: Path, timeout: float = 540) -> tuple[int, str]:
    proc.wait(timeout=timeout)
    return proc.returncode, _output(sweep).read_text()


def _in_process(root: Path, *args: str) -> Path:
    """The same grid through Hydra's basic launcher, in this process: the reference."""
    sweep = root / "reference"
    result = run_main("-m", *args, "threads=1", "wandb.mode=disabled", f"hydra.sweep.dir={sweep}",
                      cwd=root, env={"TRANSFERBENCH_CACHE": str(root / "reference_cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


def _histories(sweep: Path) -> dict[str, list]:
    return {p.parent.name: json.loads(p.read_text())["history"] for p in sweep.glob("*/result.json")}


def _job_id(run_dir: Path) -> str:
    """The Slurm job that ran ``run_dir`` (submitit's id, Hydra's ``hydra.job.id``)."""
    return str(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.job.id)


def _allocations(job_id: str) -> list[dict]:
    """Every allocation of a job, requeued ones included (sacct -D), oldest first."""
    fields = ("id", "state", "submit", "start")
    out = subprocess.run(["sacct", "-D", "-X", "-P", "-n", "-j", job_id, "-o", "JobID,State,Submit,Start"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines()]
    return sorted(rows, key=lambda row: row["start"])


def _epoch(sacct_time: str) -> int:
    """Seconds since the epoch of a time sacct prints (local time, whole seconds)."""
    return int(datetime.fromisoformat(sacct_time).timestamp())


def _running(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", name, "-t", "RUNNING", "-o", "%i"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return out.split()


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def _logs(sweep: Path, label: str) -> str:
    return "".join(p.read_text() for p in (sweep / label).glob("*.log"))


def test_demo_grid_on_slurm_runs_bases_first_and_equals_in_process(tmp_path):
    args = _grid("slurm-grid", "treatment=base,selffer,transfer,random", "n=0,3", "finetune=false,true")
    sweep = tmp_path / "sweep"
    code, out = _finish(_start(sweep, tmp_path / "cache", *args), sweep)
    assert code == 0, out[-3000:]
    runs = sorted(p.parent.name for p in sweep.glob("*/result.json"))
    assert runs == ["AnB+3-seed0", "AnB3-seed0", "BnB+3-seed0", "BnB3-seed0", "RnB3-seed0", "baseB-seed0"]
    assert sorted(base_trainings(sweep)) == ["baseA", "baseB"]  # each once, by the base run
    summary = json.loads((sweep / "summary.json").read_text())
    # and baseA, the source the base run trains and reports: 7 runs from 6 jobs
    assert summary["runs"] == {"total": 7, "ok": 7, "failed": 0, "duplicates": 0}
    first = [row for run in ("baseB-seed0", "RnB3-seed0") for row in _allocations(_job_id(sweep / run))]
    copying = [row for run in runs if run[0] in "AB" for row in _allocations(_job_id(sweep / run))]
    assert [row["state"] for row in first + copying] == ["COMPLETED"] * 6
    # the second wave (the runs that copy a base network) is submitted once the first has written
    # its results (Slurm's own end time comes a moment later, after the job's teardown, so it
    # cannot order the waves)
    first_done = max(int((sweep / run / "result.json").stat().st_mtime)
                     for run in ("baseB-seed0", "RnB3-seed0"))
    assert min(_epoch(row["submit"]) for row in copying) >= first_done
    assert sweep_numbers(sweep) == sweep_numbers(_in_process(tmp_path, *args))


def test_jobs_requeued_mid_training_resume_to_the_uninterrupted_result(tmp_path):
    name = "slurm-requeue"
    args = _grid(name, "treatment=base,selffer", "n=0,2", "finetune=false,true", *SLOW)
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    proc = _start(sweep, cache, *args)
    requeued = []
    for checkpoints in (lambda: list(cache.glob("*/checkpoint.pt")),    # baseB training, wave 1
                        lambda: list(sweep.glob("*/checkpoint.pt"))):   # BnB2 / BnB+2, wave 2
        _wait_for(lambda: checkpoints() and _running(name), proc, "a job mid-training")
        jobs = _running(name)
        subprocess.run(["scontrol", "requeue", ",".join(jobs)], check=True, timeout=60)
        requeued += jobs
    code, out = _finish(proc, sweep)
    assert code == 0, out[-3000:]
    for job in requeued:  # one allocation cut short, one that finished
        assert [row["state"] for row in _allocations(job)] == ["REQUEUED", "COMPLETED"], job
    resumed = "".join(_logs(sweep, run.name) for run in sweep.glob("*-seed0"))
    assert "resuming from" in resumed
    assert sorted(set(base_trainings(sweep))) == ["baseB"]
    assert len(list(cache.glob("*/model.pt"))) == 1 and not list(cache.glob("*/checkpoint.pt"))
    reference = _in_process(tmp_path, *args)
    assert sweep_numbers(sweep) == sweep_numbers(reference)
    assert _histories(sweep) == _histories(reference)


def _node_processes(slurmd_pid: int) -> list[int]:
    """slurmd and every process under a slurmstepd: what dies with the node."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def under_slurmstepd(pid: int) -> bool:
        while pid > 1 and pid in parents:
            if commands[pid].startswith("slurmstepd"):
                return True
            pid = parents[pid]
        return False
    return [slurmd_pid] + [pid for pid in parents if under_slurmstepd(pid)]


def _slurmd_pid_file() -> Path:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    line = next(line for line in out.splitlines() if line.startswith("SlurmdPidFile"))
    return Path(line.split("=", 1)[1].strip())


def _node_up() -> bool:
    states = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True,
                            timeout=60).stdout.split()  # one line per partition
    return bool(states) and set(states) <= {"idle", "mix", "alloc"}


def _lose_the_node() -> None:
    """SIGKILL slurmd and the jobs' processes, then start slurmd again and wait for the node."""
    pid_file = _slurmd_pid_file()
    for pid in _node_processes(int(pid_file.read_text())):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(2)
    subprocess.run(["slurmd"], check=True, timeout=60)
    deadline = time.time() + 120
    while not _node_up():
        assert time.time() < deadline, "the node did not come back"
        time.sleep(0.5)


def test_a_lost_node_loses_no_finished_run_and_the_rerun_finishes_the_rest(tmp_path):
    if os.geteuid() != 0 or not os.access(_slurmd_pid_file(), os.R_OK):
        pytest.skip("killing and restarting slurmd needs root on the node (scripts/slurm_local.sh)")
    name = "slurm-node"
    # jobs are not requeued after a node failure here, so the sweep itself has to finish them
    args = _grid(name, "treatment=base,selffer", "n=0,2", "finetune=false,true", *SLOW)
    no_requeue = "+hydra.launcher.additional_parameters.no_requeue=true"  # sbatch --no-requeue
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    proc = _start(sweep, cache, *args, no_requeue)

    def one_done_one_training() -> bool:  # in the second wave
        done = {p.parent for p in sweep.glob("*/result.json")} - {sweep / "baseB-seed0"}
        return bool(done) and any(p.parent not in done for p in sweep.glob("*/checkpoint.pt"))
    _wait_for(one_done_one_training, proc, "one run of the second wave finished, one mid-training")
    finished = {p: p.read_bytes() for p in sweep.glob("*/result.json")}
    lost = [p.parent for p in sweep.glob("*/checkpoint.pt") if p.parent / "result.json" not in finished]
    _lose_the_node()
    code, out = _finish(proc, sweep)
    assert code != 0, out[-3000:]
    assert out.strip().splitlines()[-1].startswith("error: a Slurm job of the sweep ended without")
    assert "NODE_FAIL" in out and "Traceback" not in out
    assert {p: p.read_bytes() for p in sweep.glob("*/result.json")} == finished
    assert [row["state"] for row in _allocations(_job_id(lost[0]))] == ["NODE_FAIL"]

    code, out = _finish(_start(sweep, cache, *args, no_requeue), sweep)  # the same command again
    assert code == 0, out[-3000:]
    assert all(path.read_bytes() == content for path, content in finished.items())
    for run in finished:
        assert "already finished (" in _logs(sweep, run.parent.name)
    assert "resuming from" in _logs(sweep, lost[0].name)
    assert sorted(base_trainings(sweep)) == ["baseB"]
    reference = _in_process(tmp_path, *args)
    assert sweep_numbers(sweep) == sweep_numbers(reference)
    assert _histories(sweep) == _histories(reference)


def test_a_run_longer_than_its_time_limit_goes_on_over_several_allocations(tmp_path):
    name = "slurm-timeout"
    # 2 to 6 minutes of training (0.2 to 0.55 s an epoch on the machines it ran on), so it never
    # fits in one 1-minute allocation: with 150 epochs a faster machine finished before the signal
    args = _grid(name, "treatment=base", "n=0", *SLOW, "dataset.params.train_per_class=200", "train.epochs=600")
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    # slurmctld sends the time-limit signal (USR2) up to 30 s before the time asked for, so a
    # short delay: the signal comes 25-55 s into each 1-minute allocation, after submitit's
    # handler is in place; it saves the job and requeues it (max_num_timeout requeues)
    proc = _start(sweep, cache, *args, "hydra.launcher.timeout_min=1",
                  "hydra.launcher.signal_delay_s=5", "hydra.launcher.max_num_timeout=20")
    expected = _in_process(tmp_path, *args)  # meanwhile, on the other core
    code, out = _finish(proc, sweep)
    assert code == 0, out[-3000:]
    states = [row["state"] for row in _allocations(_job_id(sweep / "baseB-seed0"))]
    # submitit requeued it before each time limit; the last allocation wrote the result (it can
    # still end FAILED when the signal of its time limit hits while the process exits)
    assert len(states) >= 2 and set(states[:-1]) == {"REQUEUED"}, states
    # each later allocation went on from the last one: from its checkpoint, or (when the time
    # limit hit after training ended but before the result was written) from the finished network
    log = _logs(sweep, "baseB-seed0")
    assert log.count("resuming from") >= 1
    assert log.count("resuming from") + log.count("using cached base network") == len(states) - 1, log
    assert sweep_numbers(sweep) == sweep_numbers(expected)
    assert _histories(sweep) == _histories(expected)
