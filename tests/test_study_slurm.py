"""`study.executor: slurm`: a study's groups of cells as jobs through submitit. Tested with
submitit's local executor (the jobs are local processes that submitit starts, pickles and
watches); a real SLURM is not started here."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_workers import TINY, _metrics

from ilf.cli import main

pytest.importorskip("submitit", reason="submitit is not installed (pip install submitit); the SLURM executor is untested")


@pytest.mark.slow
def test_cells_as_jobs_give_the_numbers_of_one_process(tmp_path: Path, capsys) -> None:
    import torch

    sets = [arg for s in TINY for arg in ("--set", s)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each job has one CPU, and computes with one thread
    try:
        assert main(["demo", "code", "--run-dir", str(tmp_path / "one" / "code"), *sets, "--set", "study.workers=1"]) == 0
    finally:
        torch.set_num_threads(threads)
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
