"""Pre-warmed workers: one sandboxed interpreter per core, each forking a child per program.

A worker (``worker.py``) is started once per pool slot, inside the same bubblewrap sandbox that a
single program gets (or as a plain process under ``unsafe_process``), with a uid of its own that
its programs drop to. The pool hands it programs one at a time over a pipe and turns each answer
into an :class:`ExecutionResult`. A worker that ends while a program runs (a program that kills
its parent, say, where it may) costs that program a ``sandbox_error`` result and is started
again for the next program; the ilf process never shares a process group with it.

Each worker is owned by a thread of its own that lives as long as the pool: bubblewrap's
``--die-with-parent`` follows the thread that started it, so a short-lived thread must not start
one. Pools are shared by every sandbox of the process with the same plan, so a study that builds a
task per cell does not start workers per cell.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, Sequence

from ilf.execution.processes import HARNESS, ExecutionResult, Limits, _claim_uid, _classify, _kill_uid, _Plan, _tasks_of

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("worker.py").read_text(encoding="utf-8")
START_SECONDS = 60.0  # a cold start under load (bubblewrap, the interpreter, the preloads)
ANSWER_GRACE = 30.0  # beyond a program's own limit: forking, cleaning up, a loaded machine
RETRY_START_AFTER = 5.0  # seconds during which a slot whose worker failed to start fails its programs at once
PROGRAM_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    # Numerical libraries start a thread per core, which counts against RLIMIT_NPROC.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class WorkerDied(Exception):
    """The worker process ended, or stopped answering; ``sent``: it had been handed the program."""

    def __init__(self, why: str, sent: bool = True) -> None:
        super().__init__(why)
        self.sent = sent


class _Process:
    """One running worker: its process, its uid claim and the pipe protocol."""

    def __init__(self, plan: _Plan, uid_base: int) -> None:
        self.plan = plan
        self.stack = contextlib.ExitStack()
        self.uid = self.stack.enter_context(_claim_uid(uid_base)) if plan.drop else None
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise

    def _start(self) -> None:
        bwrap = self.plan.isolation == "bwrap"
        if bwrap:
            workroot = "/tmp"  # bubblewrap's private /tmp: nothing outside the sandbox sees it
        else:
            workroot = tempfile.mkdtemp(prefix="ilf-sandbox-worker-")
            self.stack.callback(shutil.rmtree, workroot, ignore_errors=True)
            if self.uid is not None:
                os.chown(workroot, self.uid, self.uid)
        config = {"uid": self.uid, "workroot": workroot, "own_namespace": bwrap, "env": PROGRAM_ENV}
        command = [sys.executable, "-I", "-c", WORKER, HARNESS, json.dumps(config)]
        if bwrap:
            command = [*self.plan.bwrap_args, "--", *command]
        self.stderr: IO[bytes] = self.stack.enter_context(tempfile.TemporaryFile())
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd="/" if bwrap else workroot,
            env={**PROGRAM_ENV, "HOME": workroot, "TMPDIR": workroot},
            start_new_session=True,  # a Ctrl-C meant for ilf reaches ilf; ilf ends the worker
        )
        self.buffer = b""
        try:
            ready = self._read_line(time.monotonic() + START_SECONDS)
        except WorkerDied as err:
            self.stop()
            raise OSError(f"the sandbox worker did not start: {err}") from err
        self.pid = json.loads(ready)["ready"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def diagnostics(self) -> str:
        """How the worker ended: the last line it wrote, else the signal or status."""
        self.stderr.seek(0)
        lines = self.stderr.read().decode("utf-8", errors="replace").strip().splitlines()
        if lines:
            return lines[-1][:300]
        code = self.proc.poll()
        if code is None:
            return "still running"
        # bubblewrap reports a signal that ended its command as 128 + the signal's number
        signum = -code if code < 0 else code - 128 if self.plan.isolation == "bwrap" and code > 128 else 0
        return f"killed by {signal.Signals(signum).name}" if signum in signal.Signals._value2member_map_ else f"exit status {code}"

    def _read_line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerDied("it stopped answering")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait()
                raise WorkerDied(self.diagnostics())
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def ask(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as err:
            raise WorkerDied(f"it ended before the program was sent ({err})", sent=False) from err
        return json.loads(self._read_line(deadline))

    def stop(self) -> None:
        """End the worker and everything in it, and give its uid back."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # a worker between programs ends at the end of its input
        try:
            self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.uid is not None and self.plan.isolation != "bwrap":
            _kill_uid(self.uid)  # without a pid namespace, what its programs left runs on as the uid
        self.stack.close()


class _Slot(threading.Thread):
    """A thread that owns one worker process for the life of the pool."""

    def __init__(self, pool: WarmPool, number: int) -> None:
        super().__init__(name=f"sandbox-worker-{number}", daemon=True)
        self.pool = pool
        self.process: _Process | None = None
        self.restarts = 0
        self.start_failed: tuple[float, str] | None = None  # when a worker last failed to start, and why

    def run(self) -> None:
        while True:
            job = self.pool.jobs.get()
            if job is None:
                break
            program, limits, future = job
            if future.set_running_or_notify_cancel():
                future.set_result(self._run(program, limits))
        if self.process is not None:
            self.process.stop()
            self.process = None

    def _run(self, program: str, limits: Limits) -> ExecutionResult:
        plan = self.pool.plan
        for attempt in range(2):
            if self.start_failed is not None and time.monotonic() - self.start_failed[0] < RETRY_START_AFTER:
                # A worker that cannot start now will not start for the next program either: fail fast.
                return ExecutionResult(status="sandbox_error", error=self.start_failed[1], isolation=plan.isolation)
            try:
                if self.process is None or not self.process.alive():
                    if self.process is not None:
                        self._restart_after("it ended between programs")
                    self.process = _Process(plan, self.pool.uid_base)
                    self.start_failed = None
            except OSError as err:
                why = f"could not start a sandbox worker: {err}"
                log.warning("sandbox: %s", why)
                self.start_failed = (time.monotonic(), why)
                return ExecutionResult(status="sandbox_error", error=why, isolation=plan.isolation)
            processes = limits.processes
            if self.process.uid is None and os.geteuid() != 0:
                processes += _tasks_of(os.getuid())  # the kernel counts the user's every process
            request = {
                "source": program,
                "timeout": limits.timeout,
                "memory_mb": limits.memory_mb,
                "file_size_mb": limits.file_size_mb,
                "processes": processes,
                "trace_after": max(limits.timeout * 0.9, limits.timeout - 1.0),
            }
            try:
                answer = self.process.ask(request, time.monotonic() + limits.timeout + ANSWER_GRACE)
            except WorkerDied as err:
                self._restart_after(str(err))
                if not err.sent and attempt == 0:
                    continue  # the program never reached it: a fresh worker runs it
                return ExecutionResult(
                    status="sandbox_error",
                    error=f"the sandbox worker ended while this program ran ({err}); a program that kills its "
                    "parent process does this. The worker was started again for the next program",
                    isolation=plan.isolation,
                    unprivileged=plan.drop,
                )
            if answer.get("retire"):
                # The worker could not clean up after this program and ends: start a fresh one next.
                self._restart_after(answer["retire"])
            return _classify(
                program,
                returncode=answer["returncode"],
                timed_out=answer["timed_out"],
                limits=limits,
                verdict=answer["verdict"],
                trace=answer["trace"],
                stdout=answer["stdout"],
                stderr=answer["stderr"],
                seconds=answer["seconds"],
                plan=plan,
                signal_in_status=False,
            )
        raise AssertionError("unreachable: the second attempt always returns")

    def _restart_after(self, why: str) -> None:
        self.restarts += 1
        log.warning("sandbox: a worker ended (%s); starting a new one", why)
        if self.process is not None:
            self.process.stop()
            self.process = None


class WarmPool:
    """``size`` pre-warmed workers sharing one queue of programs."""

    def __init__(self, plan: _Plan, size: int, uid_base: int) -> None:
        self.plan = plan
        self.uid_base = uid_base
        self.jobs: queue.Queue[tuple[str, Limits, Future[ExecutionResult]] | None] = queue.Queue()
        self.slots = [_Slot(self, n) for n in range(size)]
        for slot in self.slots:
            slot.start()

    def submit(self, program: str, limits: Limits) -> Future[ExecutionResult]:
        future: Future[ExecutionResult] = Future()
        self.jobs.put((program, limits, future))
        return future

    def run_many(self, programs: Sequence[str], limits: Limits) -> list[ExecutionResult]:
        futures = [self.submit(p, limits) for p in programs]
        return [f.result() for f in futures]

    def worker_pids(self) -> list[int]:
        """Host pids of the running workers' outermost processes (bubblewrap's, under bubblewrap)."""
        return [s.process.proc.pid for s in self.slots if s.process is not None and s.process.alive()]

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self.slots)

    def close(self) -> None:
        for _ in self.slots:
            self.jobs.put(None)
        for slot in self.slots:
            slot.join(timeout=10.0)


_pools: dict[tuple[_Plan, int, int], WarmPool] = {}
_pools_lock = threading.Lock()


def shared_pool(plan: _Plan, size: int, uid_base: int) -> WarmPool:
    """The process's pool for this plan and size, started on first use."""
    key = (plan, size, uid_base)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = WarmPool(plan, size, uid_base)
        return _pools[key]


def close_pools() -> None:
    """Stop every worker of this process and give back their uids and folders (also at exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)
