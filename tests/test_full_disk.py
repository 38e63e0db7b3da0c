"""A full disk mid-run: one clear line, no traceback, earlier results intact."""
import subprocess

import pytest

from conftest import run_cli, run_main


@pytest.fixture
def tiny_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip()}); needs root")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_ends_in_one_line_and_keeps_earlier_results(tmp_path, tiny_disk, shared_cache):
    finished = tiny_disk / "baseB"
    env = {"TRANSFERBENCH_CACHE": str(shared_cache)}  # the base networks live off the tiny disk
    assert run_main("experiment=smoke", f"hydra.run.dir={finished}", cwd=tmp_path, env=env
                    ).returncode == 0
    before = (finished / "result.json").read_bytes()
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill it, then free a few KB: enough to
        try:                                      # start the run, not to finish it
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    filler.write_bytes(filler.read_bytes()[:-12 * 1024])
    proc = run_cli("experiment=smoke", "treatment=selffer", "n=2", f"hydra.run.dir={tiny_disk / 'BnB2'}",
                   cwd=tmp_path, env=env)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    assert (finished / "result.json").read_bytes() == before
