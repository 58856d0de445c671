"""What one sandboxed program is and how it ended: its limits, its result, the harness that runs
it, and the unprivileged uids programs run as. Shared by the sandbox and its pre-warmed pool."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("ilf.execution.sandbox")

STATUSES = ("passed", "failed", "timeout", "memory_error", "sandbox_error")
UID_SLOTS = 1024
OUTPUT_TAIL = 1000

HARNESS = (Path(__file__).with_name("harness.py")).read_text(encoding="utf-8")
HARNESS_VERSION = hashlib.sha256(HARNESS.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Limits:
    """What one program may use. ``timeout`` is wall-clock seconds for the whole program."""

    timeout: float = 10.0
    memory_mb: int = 1024
    processes: int = 16
    file_size_mb: int = 16

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "processes", "file_size_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sandbox limit {name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended.

    ``error`` is the last line of the traceback (``AssertionError: ...``), ``line`` the program
    statement that raised it, ``test`` the statement of ``check`` that was running when that
    differs (the failing assertion when the error is inside the function under test).
    """

    status: str
    error: str = ""
    line: str = ""
    test: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    isolation: str = ""
    unprivileged: bool = False
    cached: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def summary(self) -> str:
        """One line for people and refinement prompts: what failed, and where."""
        if self.passed:
            return "passed"
        text = self.error or self.status
        if self.line:
            text += f" at `{self.line}`"
        if self.test and self.test != self.line:
            text += f" in the test `{self.test}`"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "cached"}

    @classmethod
    def from_dict(cls, data: dict[str, Any], cached: bool = False) -> ExecutionResult:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and k != "cached"}, cached=cached)


@dataclass(frozen=True)
class _Plan:
    """How programs are started on this machine, settled once by a probe."""

    isolation: str  # "bwrap" or "unsafe_process"
    drop: bool  # run as an unprivileged uid (we are root)
    bwrap_args: tuple[str, ...] = ()


_TRACE_FRAME = re.compile(r'File "program\.py", line (\d+) in (\S+)')


def _classify(
    program: str,
    returncode: int,
    timed_out: bool,
    limits: Limits,
    verdict: str,
    trace: str,
    stdout: str,
    stderr: str,
    seconds: float,
    plan: _Plan,
    signal_in_status: bool = True,
) -> ExecutionResult:
    """The result of a program from how its process ended. ``signal_in_status``: the status is
    bubblewrap's, which reports a signal that killed the program as 128 + its number."""
    common = {
        "stdout": stdout[-OUTPUT_TAIL:],
        "stderr": stderr[-OUTPUT_TAIL:],
        "seconds": round(seconds, 3),
        "isolation": plan.isolation,
        "unprivileged": plan.drop,
    }
    try:
        report = json.loads(verdict) if verdict.strip() else None
    except ValueError:
        report = None  # something other than the harness wrote there
    if isinstance(report, dict) and report.get("status") in STATUSES:
        fields = {k: str(report.get(k) or "") for k in ("error", "line", "test")}
        return ExecutionResult(status=report["status"], **fields, **common)

    signum = (
        -returncode if returncode < 0 else returncode - 128 if signal_in_status and plan.isolation == "bwrap" and returncode > 128 else 0
    )
    if timed_out or signum == signal.SIGXCPU:
        lines = program.splitlines()
        frames = [(int(n), name) for n, name in _TRACE_FRAME.findall(trace)]  # most recent call first
        line = lines[frames[0][0] - 1].strip() if frames and frames[0][0] <= len(lines) else ""
        test = next((lines[n - 1].strip() for n, name in frames if name == "check" and n <= len(lines)), "")
        why = f"timed out after {limits.timeout:g} s" if timed_out else "ran out of CPU time"
        return ExecutionResult(status="timeout", error=why, line=line, test=test, **common)
    if "MemoryError" in stderr:
        return ExecutionResult(status="memory_error", error="MemoryError", **common)
    if signum:
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        return ExecutionResult(status="failed", error=f"killed by {name} before its tests finished", **common)
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    error = f"exited with code {returncode} before its tests finished" + (f" ({last[:200]})" if last else "")
    return ExecutionResult(status="failed", error=error, **common)


@contextlib.contextmanager
def _claim_uid(base: int) -> Any:
    """A uid no other program is running as: a lock file per uid, held while the program runs, so
    the threads of this process and other ilf processes on the machine never share one; a uid
    that still has processes (exited, not yet reaped) is skipped."""
    folder = Path(tempfile.gettempdir()) / "ilf-sandbox-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.geteuid():
        raise OSError(f"{folder} belongs to another user; remove it")
    for uid in range(base, base + UID_SLOTS):
        handle = open(folder / str(uid), "a")  # held open, and locked, while the uid is in use
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        if _uid_pids(uid):  # a killed program's children not yet reaped by init still count against RLIMIT_NPROC
            handle.close()
            continue
        try:
            yield uid
        finally:
            handle.close()
        return
    raise OSError(f"all {UID_SLOTS} sandbox uids from {base} are in use")


def _uid_pids(uid: int, running_only: bool = False) -> list[int]:
    """Processes of ``uid``; with ``running_only``, not those that have exited and wait to be reaped."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != uid:
                    continue
                if running_only and Path(entry.path, "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                    continue
            except (FileNotFoundError, ProcessLookupError):
                continue  # the process ended while we looked
            pids.append(int(entry.name))
    return pids


def _tasks_of(uid: int) -> int:
    """Processes and threads of ``uid``: RLIMIT_NPROC counts them all, not only the program's."""
    count = 0
    for pid in _uid_pids(uid):
        with contextlib.suppress(FileNotFoundError):
            count += len(os.listdir(f"/proc/{pid}/task"))
    return count


def _kill_uid(uid: int, seconds: float = 2.0) -> None:
    """Kill every process of ``uid`` and wait until none runs. Zombies stay until init reaps them."""
    deadline = time.monotonic() + seconds
    while pids := _uid_pids(uid, running_only=True):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            log.warning("sandbox: processes of uid %d survive SIGKILL: %s", uid, pids)
            return
        time.sleep(0.01)
