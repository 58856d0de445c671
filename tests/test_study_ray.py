"""`study.executor: ray`: a study's groups of cells as tasks of a local Ray cluster that this test
starts; the numbers equal one process's, and a worker killed mid-cell costs nothing but time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_study_workers import TINY, _metrics, one_process_reference

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[default]'); the Ray executor is untested")

METHODS = "study.methods=[before,sft_reference,sft_initial]"


def _group_workers() -> list[int]:
    """Ray workers running a group of cells now (Ray titles a worker by the task it runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"ray::_ray_group" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_cells_on_ray_give_the_numbers_of_one_process_and_survive_a_killed_worker(tmp_path: Path) -> None:
    sets = [arg for s in [*TINY, METHODS] for arg in ("--set", s)]
    one_process_reference(tmp_path / "one" / "code", sets)

    run_dir = tmp_path / "ray" / "code"
    command = [sys.executable, "-m", "ilf", "demo", "code", "--run-dir", str(run_dir), *sets, "--executor", "ray"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_DEDUP_LOGS": "0"}  # a local cluster of its own
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    firsts = [run_dir / "cells" / f"seed{seed}-before-pretraining.seed=7" / "metrics.json" for seed in (0, 1)]
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and process.poll() is None:
        if all(first.exists() for first in firsts) and (workers := _group_workers()):
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # a worker dies mid-group: its task is retried elsewhere
        time.sleep(0.05)
    out, _ = process.communicate(timeout=600)
    assert killed is not None, "no Ray worker was seen running a group of cells:\n" + out[-3000:]
    assert process.returncode == 0, out[-4000:]
    # the retried group found its first cell finished and went on from there
    assert ": up to date" in out
    assert "as Ray tasks on a local Ray cluster" in out
    assert _metrics(run_dir) == _metrics(tmp_path / "one" / "code")
    assert len(_metrics(run_dir)) == 6


def test_a_run_directory_the_cluster_cannot_see_is_refused(tmp_path: Path, monkeypatch) -> None:
    from ilf.errors import IlfError
    from ilf.study import executors

    monkeypatch.setattr(executors, "_read_probe", lambda path: None)  # as a worker on another node, without the shared disk
    ray.init(num_cpus=1, include_dashboard=False)
    try:
        with pytest.raises(IlfError, match="is not visible from the Ray cluster's workers: put it on storage every node mounts"):
            executors._check_shared_storage(ray, tmp_path)
    finally:
        ray.shutdown()
    assert not list(tmp_path.glob(".ray-probe-*"))
