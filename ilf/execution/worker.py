"""The pre-warmed side of the sandbox: one interpreter, started once, forks a child per program.

The parent starts this file's source with ``python -I -c``, the harness's source as the first
argument and a JSON configuration as the second (inside bubblewrap, normally). It reads one JSON
request per line (a program and its limits) and answers each with one JSON line: the child's
exit status, whether the wall clock ran out, the harness's verdict, the tails of what the program
printed and the frames ``faulthandler`` wrote before the limit.

Each child is a fresh fork of this clean interpreter, so a module one program imports, or a
global it changes, is gone for the next. In the child: a session of its own (the process group
killed at once on timeout), stdin from /dev/null, stdout and stderr into memory files whose size
``RLIMIT_FSIZE`` bounds, every other descriptor closed, the rlimits, the drop to the unprivileged
uid, then a fresh directory under ``workroot`` as its working directory, ``$HOME`` and ``$TMPDIR``.
After each program, whatever it left behind (processes in a session of their own, files anywhere
in ``workroot``) is killed and removed before the next one starts, so programs never meet.

Like the harness it imports nothing of ilf: it runs wherever the interpreter runs.
"""

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import types

OUTPUT_TAIL = 4000  # bytes of each stream sent back; the parent keeps fewer characters
TRACE_MAX = 64 * 1024
# Imported once here so that programs which import them start faster; every child sees the same
# clean copies, so nothing one program does to them reaches the next.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "string", "heapq", "bisect", "hashlib", "ast")


def _tail(fd: int, size: int) -> str:
    length = os.fstat(fd).st_size
    data = os.pread(fd, size, max(0, length - size))
    return data.decode("utf-8", errors="replace")


def _removed(path: str) -> bool:
    """Remove a file or a directory tree; False where this process may not."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)  # an empty directory needs no listing, which a directory of mode 700 refuses
            except OSError:
                shutil.rmtree(path)
        else:
            os.unlink(path)
        return True
    except OSError:
        return False


def _close_other_descriptors(keep: set) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                continue  # the directory's own descriptor, closed by now


class Worker:
    def __init__(self, harness: types.ModuleType, config: dict) -> None:
        self.harness = harness
        self.uid = config.get("uid")
        self.workroot = config["workroot"]
        # In a pid namespace of its own every other process but the namespace's init is a
        # program's leftover; outside one only the uid (when it is private) tells them apart.
        self.own_namespace = bool(config.get("own_namespace"))
        self.env = dict(config.get("env") or {})
        self.baseline = set(os.listdir(self.workroot))
        self.pid = os.getpid()
        self.retire = ""  # why this worker must end after its answer; the parent starts a fresh one

    def run(self, request: dict) -> dict:
        source = request["source"]
        verdict_r, verdict_w = os.pipe()
        stdout_fd = os.memfd_create("stdout")
        stderr_fd = os.memfd_create("stderr")
        trace_fd = os.memfd_create("trace")
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self._child(source, request, verdict_w, stdout_fd, stderr_fd, trace_fd)
        os.close(verdict_w)
        timed_out = not self._wait(pid, request["timeout"])
        # Always: a program's background children must not outlive it. An empty group is fine.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - started
        os.set_blocking(verdict_r, False)
        try:
            verdict = os.read(verdict_r, 65536).decode("utf-8", errors="replace")
        except BlockingIOError:
            verdict = ""
        response = {
            "returncode": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "verdict": verdict,
            "trace": _tail(trace_fd, TRACE_MAX),
            "stdout": _tail(stdout_fd, OUTPUT_TAIL),
            "stderr": _tail(stderr_fd, OUTPUT_TAIL),
            "seconds": seconds,
        }
        for fd in (verdict_r, stdout_fd, stderr_fd, trace_fd):
            os.close(fd)
        response["left_behind"] = self._clean()
        if self.retire:
            response["retire"] = self.retire
        return response

    def _wait(self, pid: int, timeout: float) -> bool:
        """True when the child ended within ``timeout`` seconds."""
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            return bool(ready)
        finally:
            os.close(pidfd)

    def _child(self, source: str, request: dict, verdict_w: int, stdout_fd: int, stderr_fd: int, trace_fd: int) -> None:
        try:
            os.setsid()
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            _close_other_descriptors({verdict_w, trace_fd})
            self.harness.limit(request)
            if self.uid is not None:
                self.harness.drop_to(self.uid)
            workdir = tempfile.mkdtemp(prefix="program-", dir=self.workroot)
            os.chdir(workdir)
            os.environ.clear()
            os.environ.update(self.env, HOME=workdir, TMPDIR=workdir)
            tempfile.tempdir = workdir
            sys.argv = ["program.py"]
            self.harness.execute(source, verdict_w, trace_fd, request["trace_after"])
        except BaseException as exc:  # the child must never return into the worker's loop
            try:
                os.write(2, f"sandbox worker: the program could not start: {exc!r}\n".encode())
            finally:
                os._exit(70)

    def _leftover_pids(self) -> list:
        """Processes a finished program left running (zombies waiting to be reaped do not count)."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (1, self.pid):
                continue
            try:
                if not self.own_namespace and os.stat(f"/proc/{name}").st_uid != self.uid:
                    continue
                with open(f"/proc/{name}/stat", "rb") as handle:
                    if handle.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                        continue
            except OSError:
                continue  # it ended while we looked
            found.append(int(name))
        return found

    def _clean(self) -> int:
        """Kill what the program left running and remove what it left in ``workroot``; how many
        processes and entries that was."""
        # Outside a pid namespace of its own, only a uid private to this worker tells its programs'
        # processes apart; without one nothing but the process group can be killed.
        pids = self._leftover_pids() if self.own_namespace or self.uid is not None else []
        entries = [os.path.join(self.workroot, n) for n in set(os.listdir(self.workroot)) - self.baseline]
        if not pids and not entries:
            return 0
        killed = len(pids)
        for _ in range(50):  # a leftover that forks while it is being killed leaves a child: look again
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            if not pids:
                break
            time.sleep(0.002)  # a killed process is gone once it was scheduled to die
            pids = self._leftover_pids()
            killed += len(pids)
        # Most programs leave only their empty directory, and files at the top of workroot, which
        # its owner may remove.
        entries = [e for e in entries if not _removed(e)]
        if entries and self.uid is not None:
            # The worker may not look into what belongs to the uid (it keeps no such capability):
            # a short-lived child that becomes the uid removes it.
            cleaner = os.fork()
            if cleaner == 0:
                try:
                    self.harness.drop_to(self.uid)
                    for entry in entries:
                        _removed(entry)
                finally:
                    os._exit(0)
            os.waitpid(cleaner, 0)
        left = [e for e in entries if os.path.lexists(e)]
        if left:
            # What nobody could remove would reach the next program: this worker must not run one.
            self.retire = f"could not remove what a program left in {self.workroot}: {left[:3]}"
        self._reap()
        return killed + len(entries)

    def _reap(self) -> None:
        """Collect the exit of killed leftovers that were reparented here (none, usually)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def main() -> None:
    harness = types.ModuleType("ilf_sandbox_harness")
    exec(compile(sys.argv[1], "harness.py", "exec"), harness.__dict__)
    config = json.loads(sys.argv[2])
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            continue  # an interpreter without it: programs import it themselves, or fail as they would anyway
    # The requests and answers get descriptors of their own; 0 and 1 become /dev/null, so a child
    # can never reach them, even before it closes what it inherited.
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    worker = Worker(harness, config)
    answers.write(json.dumps({"ready": os.getpid()}).encode() + b"\n")
    answers.flush()
    for line in requests:
        response = worker.run(json.loads(line))
        answers.write(json.dumps(response).encode() + b"\n")
        answers.flush()
        if worker.retire:
            sys.stderr.write(f"sandbox worker: {worker.retire}\n")
            return


if __name__ == "__main__":
    main()
