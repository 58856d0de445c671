"""`study.executor: slurm`: a study's groups of cells as jobs through submitit, with submitit's
local executor and with a real one-node SLURM (Debian's slurm-wlm) that the test starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_workers import TINY, _metrics, one_process_reference

from ilf.cli import main

pytest.importorskip("submitit", reason="submitit is not installed (pip install submitit); the SLURM executor is untested")


@pytest.mark.slow
def test_cells_as_jobs_give_the_numbers_of_one_process(tmp_path: Path, capsys) -> None:
    sets = [arg for s in TINY for arg in ("--set", s)]
    one_process_reference(tmp_path / "one" / "code", sets)
    run_dir = tmp_path / "jobs" / "code"
    jobs = ["--executor", "slurm", "--set", "study.slurm.cluster=local", "--set", "study.slurm.cpus_per_task=1"]
    assert main(["demo", "code", "--run-dir", str(run_dir), *sets, *jobs]) == 0
    printed = capsys.readouterr().out
    assert "submitted 2 jobs (local)" in printed
    assert _metrics(run_dir) == _metrics(tmp_path / "one" / "code")
    logs = list((run_dir / ".slurm").glob("*/*_log.out"))
    assert len(logs) == 2 and all("seed" in log.read_text() for log in logs)  # each job's cells printed into its log

    # a rerun submits again and every cell is found up to date
    assert main(["demo", "code", "--run-dir", str(run_dir), *sets, *jobs]) == 0
    capsys.readouterr()
    logs = sorted((run_dir / ".slurm").glob("*/*_log.out"), key=lambda p: p.stat().st_mtime)[-2:]
    assert all(log.read_text().count("up to date") == 2 for log in logs)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slurm_cluster(tmp_path_factory, monkeypatch):
    """A one-node SLURM of Debian's slurm-wlm (munged, slurmctld, slurmd as this user, root), with
    its own config, ports and munge socket, stopped afterwards."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0 or not Path("/etc/munge/munge.key").exists():
        print(
            "\n" + "!" * 78 + f"\nSLURM COULD NOT BE STARTED (missing: {missing or 'root or /etc/munge/munge.key'}; "
            "apt-get install slurm-wlm as root): the real-SLURM test is skipped\n" + "!" * 78
        )
        pytest.skip("no slurm-wlm to start a one-node SLURM with")
    root = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname()
    (root / "state").mkdir()
    (root / "spool").mkdir()
    conf = root / "slurm.conf"
    conf.write_text(
        f"ClusterName=ilftest\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n"
        f"SlurmctldPort={_free_port()}\nSlurmdPort={_free_port()}\nAuthType=auth/munge\nAuthInfo=socket={root}/munge.socket\n"
        f"StateSaveLocation={root}/state\nSlurmdSpoolDir={root}/spool\nSlurmctldPidFile={root}/slurmctld.pid\n"
        f"SlurmdPidFile={root}/slurmd.pid\nSlurmctldLogFile={root}/slurmctld.log\nSlurmdLogFile={root}/slurmd.log\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nAccountingStorageType=accounting_storage/none\n"
        "JobAcctGatherType=jobacct_gather/none\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
        "SelectTypeParameters=CR_CPU\nReturnToService=2\n"
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN\n"
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    daemons = [
        subprocess.Popen(
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={root}/munge.socket",
                f"--pid-file={root}/munged.pid",
                f"--log-file={root}/munged.log",
                f"--seed-file={root}/munged.seed",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    time.sleep(0.5)
    daemons += [subprocess.Popen([d, "-D"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for d in ("slurmctld", "slurmd")]
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the one-node SLURM did not come up: {(root / 'slurmctld.log').read_text()[-2000:]}")
        yield root
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
            daemon.wait(timeout=30)


@pytest.mark.slow
def test_cells_as_jobs_of_a_real_one_node_slurm(slurm_cluster: Path, tmp_path: Path, capsys) -> None:
    sets = [arg for s in TINY for arg in ("--set", s)]
    one_process_reference(tmp_path / "one" / "code", sets)
    run_dir = tmp_path / "slurm" / "code"
    assert main(["demo", "code", "--run-dir", str(run_dir), *sets, "--executor", "slurm", "--set", "study.slurm.cpus_per_task=1"]) == 0
    printed = capsys.readouterr().out
    assert "submitted 2 jobs (slurm)" in printed
    assert _metrics(run_dir) == _metrics(tmp_path / "one" / "code")  # the same numbers as one process
    assert len(list((run_dir / ".slurm").glob("*/*_log.out"))) == 2
