"""`study.workers`: a study's cells spread over processes give the numbers one process gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ilf.cli import main

TINY = [
    "pretraining.steps=6",
    "pretraining.examples=200",
    "data.limit=4",
    "data.eval_limit=4",
    "evaluation.num_samples=2",
    "finetune.num_train_epochs=1",
    "study.sizes=[4]",
    "study.seeds=[0,1]",
    'study.axes={"pretraining.seed": [7]}',
    "study.methods=[before,sft_reference]",
    'study.gates=["sft_reference pass@1 >= 0.9 at 4"]',
]


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    return value


def one_process_reference(run_dir: Path, sets: list[str]) -> None:
    """The study run in this one process with one CPU thread: what a worker with one CPU computes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["demo", "code", "--run-dir", str(run_dir), *sets, "--set", "study.workers=1"]) == 0
    finally:
        torch.set_num_threads(threads)


def _metrics(run_dir: Path) -> dict[str, dict]:
    """Every cell's metrics, less how long generation took (the one thing that differs between runs)."""
    return {p.parent.name: _without_timings(json.loads(p.read_text())) for p in sorted((run_dir / "cells").glob("*/metrics.json"))}


@pytest.mark.slow
def test_cells_in_two_processes_give_the_numbers_of_one(tmp_path: Path, capsys) -> None:
    # two world models of one seed: their groups run side by side and share the seed's data stage
    two_worlds = [*TINY, "study.seeds=[0]", 'study.axes={"pretraining.seed": [7, 8]}']
    sets = [arg for s in two_worlds for arg in ("--set", s)]
    one_process_reference(tmp_path / "one" / "code", sets)
    # each of the two worker processes on this 2-core machine gets one thread, as the reference had
    assert main(["demo", "code", "--run-dir", str(tmp_path / "two" / "code"), *sets, "--set", "study.workers=2"]) == 0
    printed = capsys.readouterr().out
    # both world models trained first, side by side in two processes (their trainings overlap in time), then the cells spread
    assert "pretrained 2 world model(s)" in printed and "running 2 groups of cells in 2 processes" in printed
    assert printed.index("pretrained 2 world model(s)") < printed.index("running 2 groups")
    spans = []
    for metrics in sorted((tmp_path / "two" / "world-cache").glob("program-world-model-*/pretrain_metrics.json")):
        end = metrics.stat().st_mtime
        spans.append((end - json.loads(metrics.read_text())["seconds"], end))
    assert len(spans) == 2 and spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    one, two = _metrics(tmp_path / "one" / "code"), _metrics(tmp_path / "two" / "code")
    assert sorted(one) == [
        "seed0-before-pretraining.seed=7",
        "seed0-before-pretraining.seed=8",
        "seed0-sft_reference-n4-pretraining.seed=7",
        "seed0-sft_reference-n4-pretraining.seed=8",
    ]
    assert one == two
    assert all(cell["systems"][cell["primary"]]["programs"] == 8 for cell in one.values())  # 4 tasks x 2 samples each, all run
    # the data stage both groups need was computed once, by whichever came first, and linked into the other
    data = [json.loads(p.read_text()) for p in sorted((tmp_path / "two" / "code" / "cells").glob("*/.ilf/stages/data.json"))]
    assert len(data) == 4 and sum("shared_from" not in marker for marker in data) == 1
    gate = json.loads((tmp_path / "two" / "code" / "contrasts.json").read_text())["gates"]
    assert [(g["gate"], g["size"]) for g in gate] == [("sft_reference pass@1 >= 0.9 at 4", 4)] * 2  # one per world model

    # `ilf status STUDY_DIR`: where each cell stands, from the run directories alone
    study = tmp_path / "two" / "code"
    assert main(["status", str(study), "--profile"]) == 0
    printed = capsys.readouterr().out
    assert "4 done, 0 running, 0 failed, 0 waiting of 4 cells" in printed
    # where the time went: the data stage four cells read was computed once; every stage's peak memory recorded
    profile = {
        row[0]: row[1:] for row in (line.strip("|").replace(" ", "").split("|") for line in printed.splitlines() if line.startswith("| "))
    }
    assert profile["data"][0] == "1" and profile["evaluate"][0] == "4" and profile["finetune"][0] == "2"
    assert profile["pretrain"][0] == "1"  # the study's own stage: both world models, before any cell
    assert all(row[3] != "-" for stage, row in profile.items() if stage != "stage")
    cells = study / "cells"
    (cells / "seed0-sft_reference-n4-pretraining.seed=8" / "error.txt").write_text("Traceback ...\nValueError: out of patience\n")
    shutil.rmtree(cells / "seed0-before-pretraining.seed=8")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (cells / "seed0-before-pretraining.seed=7" / ".ilf" / "lock").write_text(str(holder.pid))
        assert main(["status", str(study)]) == 0
        lines = capsys.readouterr().out.splitlines()
    finally:
        holder.kill()
        holder.wait()
    states = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[:-1]}
    assert states == {
        "seed0-before-pretraining.seed=7": f"running (pid {holder.pid})",
        "seed0-sft_reference-n4-pretraining.seed=7": "done",
        "seed0-before-pretraining.seed=8": "waiting",
        "seed0-sft_reference-n4-pretraining.seed=8": "failed (ValueError: out of patience)",
    }
    assert lines[-1] == "1 done, 1 running, 1 failed, 1 waiting of 4 cells"


def test_gate_sizes_are_checked_when_the_study_loads(tmp_path: Path, capsys) -> None:
    from ilf.study.config import parse_gate

    assert parse_gate("sft_reference pass@1 >= 0.9 at 100") == ("sft_reference", "pass@1", ">=", 0.9, 100)
    assert parse_gate("sft_reference pass@1 >= 0.9") == ("sft_reference", "pass@1", ">=", 0.9, None)
    for bad, problem in (("a m >= 0.9 on 100", "optionally followed by 'at SIZE'"), ("a m >= 0.9 at ten", "is not a whole number")):
        with pytest.raises(ValueError, match=problem):
            parse_gate(bad)
    run = ["demo", "code", "--run-dir", str(tmp_path / "code"), "--set", 'study.gates=["sft_reference pass@1 >= 0.9 at 10"]']
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "study.gates[0]" in err and "size 10 is not one of study.sizes [100]" in err
    assert main([*run[:4], "--set", "study.workers=0"]) == 2
    assert "study.workers" in capsys.readouterr().err and not (tmp_path / "code").exists()


def test_a_waiting_lock_waits_for_a_live_holder_and_a_plain_one_refuses(tmp_path: Path) -> None:
    import time

    from ilf.files import DirectoryBusy, DirectoryLock

    lock = tmp_path / ".model.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    try:
        lock.write_text(str(holder.pid))  # another process, alive, holds it
        with pytest.raises(DirectoryBusy, match="holds this lock"):
            DirectoryLock(lock).__enter__()
        started = time.monotonic()
        with DirectoryLock(lock, wait=True):  # taken once the holder has gone
            assert lock.read_text() == str(__import__("os").getpid())
            assert holder.poll() is not None
        assert time.monotonic() - started > 0.5 and not lock.exists()
    finally:
        holder.kill()
        holder.wait()
