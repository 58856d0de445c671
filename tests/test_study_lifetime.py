"""A study's processes end with it: killing the parent (SIGTERM, or kill -9, which runs no clean-up)
leaves no worker, and no sandbox a worker started, running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = [
    "pretraining.steps=6",
    "pretraining.examples=200",
    "data.limit=6",
    "data.eval_limit=6",
    "finetune.num_train_epochs=40",  # cells long enough to be killed in the middle
    "study.sizes=[6]",
    "study.seeds=[0,1]",
    'study.axes={"pretraining.seed": [7, 8]}',
    "study.methods=[ilf,refine_no_feedback,sft_reference]",
    "study.workers=2",
    "study.gates=[]",
    "study.contrasts=[]",
]


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while listed
            found.setdefault(ppid, []).append(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    tree, todo, found = _children(), [pid], set()
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize(
    ("executor", "how"),
    [("local", signal.SIGTERM), ("local", signal.SIGKILL), ("ray", signal.SIGKILL)],
    ids=["local-SIGTERM", "local-SIGKILL", "ray-SIGKILL"],
)
def test_killing_a_studys_parent_leaves_none_of_its_processes(tmp_path: Path, executor: str, how: signal.Signals) -> None:
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[default]')")
    run_dir = tmp_path / "code"
    extra = ["--executor", "ray", "--set", "study.ray.local_cpus=2"] if executor == "ray" else []
    command = [sys.executable, "-m", "ilf", "demo", "code", "--run-dir", str(run_dir), *(a for s in TINY for a in ("--set", s)), *extra]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    parent = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        # wait until cells of both groups run and a worker has started a sandbox: processes two levels below the parent
        while time.monotonic() < deadline and parent.poll() is None:
            seen |= _descendants(parent.pid)
            started = list((run_dir / "cells").glob("*/.ilf/stages/outputs.json"))
            if len(started) >= 2 and any(_descendants(p) for p in _children().get(parent.pid, [])):
                break
            time.sleep(0.5)
        assert parent.poll() is None, parent.stdout.read() if parent.stdout else ""
        seen |= _descendants(parent.pid)
        assert len(seen) >= 3, seen
        os.kill(parent.pid, how)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in seen):
            time.sleep(0.5)
        left = {p: Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")[:120] for p in seen if _alive(p)}
        assert not left, left
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
