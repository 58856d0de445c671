"""Run generated programs against their unit tests, each in its own limited process.

By default (executor ``warm``) a few pre-warmed workers run the programs, one per core
(``ilf.execution.pool`` and ``worker.py``): each is an interpreter (``sys.executable``, so the
packages installed here, ``pytest`` for ``pytest.approx`` among them, are importable) started once
inside bubblewrap, which forks a fresh child per program. Executor ``spawn`` starts a sandbox and
an interpreter per program instead (slower, the same limits). Every program runs under:

- a wall-clock limit: the process group is killed when it runs out, and ``RLIMIT_CPU`` backs it up;
- ``RLIMIT_AS`` (memory), ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_FSIZE`` (file size,
  its captured output included) and no core files;
- a session of its own, so the whole process group can be killed at once, and whatever it left
  running in another session is killed after it;
- a fresh working directory and ``$TMPDIR``, removed after it, and an environment of a few fixed
  variables (the parent's API keys and tokens are not passed on);
- as root: an unprivileged uid of its own (``uid_base`` + a slot claimed with a lock file), since
  the kernel never applies ``RLIMIT_NPROC`` to root and root may read and write any file;
- bubblewrap (``bwrap``): a read-only view of the file system with a private ``/tmp``, no network
  (a loopback of its own with nothing listening), its own pid and IPC namespaces, no capabilities
  beyond the three the worker needs to drop to the uid and end its programs, and death with the
  parent. Directories on the way to the interpreter that other users may not enter (``/root``
  holding a pyenv, say) are replaced by an empty directory holding only the interpreter, so the
  unprivileged uid can start Python and sees nothing else there.

Without bubblewrap, or as root where the unprivileged uid cannot read the interpreter, the sandbox
refuses (:class:`SandboxUnavailable`, one line saying how to fix it) before any program runs. Only
``isolation="unsafe_process"``, asked for by name, runs programs as plain limited subprocesses;
every result records which isolation ran.

Threat model. This stops the accidents generated code makes: infinite loops, memory blow-ups,
fork bombs, huge outputs, writes outside its temporary directory, network access, signals to
other processes and reading the files of other users. It does not stop a determined attacker: a
kernel exploit, a bubblewrap bug, or a program that forges its own verdict (the harness runs in
the program's process, so code written to fool it can; do not use pass/fail from here as a reward
against an adversarial optimiser without a separate checker). Under ``unsafe_process`` a program
can read every file its uid can read, reach the network and, without a uid of its own, write where
ilf may write and signal ilf's processes. For untrusted code from the internet use a VM-level
sandbox (gVisor, Firecracker, a throwaway VM) around the whole job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Sequence

from ilf.errors import IlfError
from ilf.execution.pool import shared_pool
from ilf.execution.processes import (  # noqa: F401 - re-exported: the sandbox's results and limits are its API
    HARNESS,
    HARNESS_VERSION,
    OUTPUT_TAIL,
    STATUSES,
    UID_SLOTS,
    ExecutionResult,
    Limits,
    _claim_uid,
    _classify,
    _kill_uid,
    _Plan,
    _tasks_of,
    _uid_pids,
)
from ilf.files import atomic_write_json

log = logging.getLogger(__name__)

ISOLATIONS = ("bwrap", "unsafe_process")
# Names a config may still hold: "auto" was the default and now means what the default means (a
# sandbox, or a refusal); "process" ran programs without isolation and must be asked for by its
# new name, so nobody gets it without reading what it means.
ALIASES = {"auto": "bwrap"}
RENAMED = {"process": "unsafe_process"}
EXECUTORS = ("warm", "spawn")
DEFAULT_MAX_ERROR_SHARE = 0.05
DEFAULT_UID_BASE = 60100  # below systemd's dynamic users (61184-65519) and above Debian's ordinary ones


class SandboxUnavailable(IlfError):
    """The isolation the config asks for cannot run on this machine."""


class SandboxErrors(IlfError):
    """Too many programs ended in a sandbox error for their verdicts to mean anything."""


HOW_TO_OPT_OUT = (
    "or, to run generated programs without isolation (they can then read every file you can, write where you can "
    "and reach the network), set task.options.isolation: unsafe_process"
)


def check_isolation(isolation: str, key: str = "task.options.isolation") -> str:
    """The isolation a name stands for; a one-line error names the key and, for an old name, the new one."""
    if isolation in RENAMED:
        raise ValueError(
            f"{key}: {isolation!r} was renamed {RENAMED[isolation]!r}, which runs programs without isolation; "
            f"write {RENAMED[isolation]!r} to mean that (or leave it out for the sandbox)"
        )
    resolved = ALIASES.get(isolation, isolation)
    if resolved not in ISOLATIONS:
        raise ValueError(f"{key}: expected one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    return resolved


_warned: set[str] = set()
_warn_lock = threading.Lock()
_plans: dict[tuple[str, int, str | None], _Plan] = {}
_plan_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    bar = "!" * 78
    log.warning("\n%s\n%s\n%s", bar, message, bar)


class Sandbox:
    """Runs programs (source text that raises on failure) with limits, a worker pool and a cache.

    ``isolation``: ``bwrap`` (the default; ``auto`` means the same): every program inside
    bubblewrap as an unprivileged uid, and :class:`SandboxUnavailable`, before any program runs,
    where that cannot be had; or ``unsafe_process``, asked for by name: plain limited processes
    that can read what the user can and reach the network.

    ``executor``: ``warm`` (the default) keeps ``workers`` sandboxed interpreters running, each
    forking a child per program (``ilf.execution.pool``); ``spawn`` starts a sandbox and an
    interpreter per program, as before the pool existed (slower; kept for comparison).

    ``max_error_share``: ``run_completions`` stops a run whose programs end in ``sandbox_error``
    more often than this (a broken sandbox must not read as failing programs).

    Verdicts are kept in memory for the life of
    the sandbox and, with ``cache_dir``, on disk by the sha256 of (program, limits, isolation,
    harness), so a program runs once; timeouts depend on the machine's load and are not written
    to disk, sandbox errors are kept nowhere.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        isolation: str = "bwrap",
        workers: int | None = None,
        cache_dir: str | Path | None = None,
        uid_base: int = DEFAULT_UID_BASE,
        executor: str = "warm",
        max_error_share: float = DEFAULT_MAX_ERROR_SHARE,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"sandbox executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        if not 0 <= max_error_share <= 1:
            raise ValueError(f"sandbox max_error_share must be in [0, 1], got {max_error_share}")
        self.limits = limits or Limits()
        self.isolation = check_isolation(isolation, "sandbox isolation")
        self.executor = executor
        self.max_error_share = max_error_share
        self.programs_run = 0  # programs that got a verdict from running (cache hits excluded)
        self.sandbox_errors = 0  # of those, how many the sandbox failed
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.uid_base = uid_base
        self.launched = 0  # programs actually started (cache hits excluded)
        self._count_lock = threading.Lock()
        self._memory: dict[str, ExecutionResult] = {}  # this process's verdicts: the select and evaluate stages share them

    # ----- public ------------------------------------------------------------------------------

    @property
    def plan(self) -> _Plan:
        """How programs run here; settled on first use, or :class:`SandboxUnavailable`."""
        key = (self.isolation, self.uid_base, shutil.which("bwrap"))
        with _plan_lock:
            if key not in _plans:
                _plans[key] = self._settle_plan()
            return _plans[key]

    def run(self, program: str) -> ExecutionResult:
        return self.run_many([program])[0]

    def run_many(self, programs: Sequence[str]) -> list[ExecutionResult]:
        """Each program's result, in order; distinct uncached programs run in parallel."""
        plan = self.plan
        results: list[ExecutionResult | None] = [None] * len(programs)
        pending: dict[str, list[int]] = {}
        for index, program in enumerate(programs):
            key = self.cache_key(program, plan)
            cached = self._read_cache(key)
            if cached is not None:
                results[index] = cached
            else:
                pending.setdefault(key, []).append(index)
        if pending:
            for key, result in zip(pending, self._execute([programs[indices[0]] for indices in pending.values()], plan)):
                self._write_cache(key, result)
                for index in pending[key]:
                    results[index] = result
        return [r for r in results if r is not None]

    def _execute(self, programs: list[str], plan: _Plan) -> list[ExecutionResult]:
        with self._count_lock:
            self.launched += len(programs)
        if self.executor == "warm":
            results = shared_pool(plan, self.workers, self.uid_base).run_many(programs, self.limits)
        else:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(programs)), thread_name_prefix="sandbox") as pool:
                results = list(pool.map(lambda program: self._run_one(program, plan), programs))
        with self._count_lock:
            self.programs_run += len(results)
            self.sandbox_errors += sum(r.status == "sandbox_error" for r in results)
        return results

    def check_errors(self) -> None:
        """Stop with one line when more than ``max_error_share`` of the programs this sandbox ran
        ended in a sandbox error: their verdicts would count as failures that the programs did not earn."""
        if self.sandbox_errors and self.sandbox_errors > self.max_error_share * self.programs_run:
            raise SandboxErrors(
                f"sandbox: {self.sandbox_errors} of {self.programs_run} programs ended in a sandbox error, more than "
                f"task.options.max_sandbox_errors ({self.max_error_share:.0%}); pass@k and every verdict would be too low. "
                "See the warnings above for why, or raise the share if a few programs break the sandbox on purpose"
            )

    def cache_key(self, program: str, plan: _Plan | None = None) -> str:
        plan = plan or self.plan
        payload = {
            "harness": HARNESS_VERSION,
            "program": program,
            "limits": dataclasses.asdict(self.limits),
            "isolation": plan.isolation,
            "unprivileged": plan.drop,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    # ----- cache -------------------------------------------------------------------------------

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir is not None else None

    def _read_cache(self, key: str) -> ExecutionResult | None:
        if key in self._memory:
            return dataclasses.replace(self._memory[key], cached=True)
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            return ExecutionResult.from_dict(json.loads(path.read_text(encoding="utf-8")), cached=True)
        except (OSError, ValueError, TypeError) as err:
            log.warning("sandbox cache: %s is unreadable (%s); running the program again", path, err)
            return None

    def _write_cache(self, key: str, result: ExecutionResult) -> None:
        if result.status != "sandbox_error":
            self._memory[key] = result
        path = self._cache_path(key)
        if path is not None and result.status not in ("timeout", "sandbox_error"):
            atomic_write_json(path, result.to_dict())

    # ----- settling how to run -----------------------------------------------------------------

    def _settle_plan(self) -> _Plan:
        if self.isolation == "unsafe_process":
            return self._unsafe_plan()
        root = os.geteuid() == 0
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "sandbox: refusing to run generated programs without isolation: bubblewrap (bwrap) is not installed "
                f"or not on PATH. Install it (as root: apt-get install bubblewrap), {HOW_TO_OPT_OUT}"
            )
        if root:
            closed = _closed_interpreter_path()
            if closed is not None:
                raise SandboxUnavailable(
                    f"sandbox: refusing to run generated programs as root: they must run as an unprivileged uid, which "
                    f"cannot read this interpreter's {closed}. Use a venv other users can read (chmod o+rX {closed}, or "
                    f"create it outside a private home directory), {HOW_TO_OPT_OUT}"
                )
            plan = _Plan("bwrap", True, tuple(_bwrap_args(bwrap, _hidden_directories() or [], root=True, drop=True)))
        else:
            plan = _Plan("bwrap", False, tuple(_bwrap_args(bwrap, [], root=False, drop=False)))
        problem = self._probe(plan)
        if problem is not None:
            raise SandboxUnavailable(
                f"sandbox: refusing to run generated programs: bubblewrap is installed but cannot run here ({problem}); "
                f"it needs user namespaces, or root. Run ilf where bubblewrap works, {HOW_TO_OPT_OUT}"
            )
        self._warn_about(plan)
        return plan

    def _unsafe_plan(self) -> _Plan:
        root = os.geteuid() == 0
        options = [_Plan("unsafe_process", True)] if root and _hidden_directories() == [] else []
        options.append(_Plan("unsafe_process", False))
        reasons = []
        for plan in options:
            problem = self._probe(plan)
            if problem is None:
                _warn_once(
                    "unsafe",
                    "SANDBOX ISOLATION IS OFF (task.options.isolation: unsafe_process): generated programs run as plain "
                    + ("processes of an unprivileged uid" if plan.drop else "processes AS ROOT" if root else "processes of your user")
                    + " with rlimits only: they can read every file that uid can read, reach the network"
                    + ("" if plan.drop else ", write wherever it may write, and signal its other processes (ilf too)")
                    + ". Remove the option, with bubblewrap installed, for the sandbox.",
                )
                self._warn_about(plan)
                return plan
            reasons.append(f"{'as an unprivileged uid: ' if plan.drop else ''}{problem}")
        raise SandboxUnavailable("sandbox: unsafe_process cannot run programs here: " + "; ".join(reasons))

    def _warn_about(self, plan: _Plan) -> None:
        if importlib.util.find_spec("pytest") is None:
            _warn_once("pytest", "pytest is not installed: programs whose tests use `from pytest import approx` will fail.")

    def _probe(self, plan: _Plan) -> str | None:
        """Run a program that imports a module nothing else loads, so the interpreter's files are
        known to be readable after the uid drop; None when it passed, else what went wrong."""
        try:
            result = self._launch("import ast\nassert ast.literal_eval('[1, 2]') == [1, 2]\n", plan, Limits(timeout=30.0))
        except OSError as err:
            return str(err)
        if result.passed:
            return None
        return (result.stderr.strip().splitlines() or [result.summary()])[-1][:300]

    # ----- running one program -----------------------------------------------------------------

    def _run_one(self, program: str, plan: _Plan) -> ExecutionResult:
        try:
            return self._launch(program, plan, self.limits)
        except OSError as err:
            log.warning("sandbox: could not start a program: %s", err)
            return ExecutionResult(status="sandbox_error", error=f"could not start the program: {err}", isolation=plan.isolation)

    def _launch(self, program: str, plan: _Plan, limits: Limits) -> ExecutionResult:
        with contextlib.ExitStack() as stack:
            uid = stack.enter_context(_claim_uid(self.uid_base)) if plan.drop else None
            files = {name: stack.enter_context(tempfile.TemporaryFile()) for name in ("source", "verdict", "trace", "stdout", "stderr")}
            files["source"].write(program.encode("utf-8"))
            files["source"].flush()
            files["source"].seek(0)
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ilf-sandbox-", ignore_cleanup_errors=True)))
            if uid is not None:
                os.chown(workdir, uid, uid)
            processes = limits.processes if uid is not None or os.geteuid() == 0 else _tasks_of(os.getuid()) + limits.processes
            settings = {
                "timeout": limits.timeout,
                "memory_mb": limits.memory_mb,
                "file_size_mb": limits.file_size_mb,
                "processes": processes,
                "uid": uid,
                "trace_after": max(limits.timeout * 0.9, limits.timeout - 1.0),
                "fds": [files[n].fileno() for n in ("source", "verdict", "trace")],
            }
            command = [sys.executable, "-I", "-c", HARNESS, json.dumps(settings)]
            if plan.isolation == "bwrap":
                command = [*plan.bwrap_args, "--", *command]
            cwd = "/" if plan.isolation == "bwrap" else str(workdir)  # bwrap changes into its private /tmp
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": "/tmp" if plan.isolation == "bwrap" else str(workdir),
                "TMPDIR": "/tmp" if plan.isolation == "bwrap" else str(workdir),
                "LANG": "C.UTF-8",
                # Numerical libraries start a thread per core, which counts against RLIMIT_NPROC.
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            }
            started = time.monotonic()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=files["stdout"],
                stderr=files["stderr"],
                pass_fds=settings["fds"],
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Always: a program's background children must not outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            seconds = time.monotonic() - started
            if uid is not None and plan.isolation != "bwrap":
                _kill_uid(uid)  # children that left the process group (setsid) are still this uid's
            return _classify(
                program,
                returncode=proc.returncode,
                timed_out=timed_out,
                limits=limits,
                verdict=_read(files["verdict"]),
                trace=_read(files["trace"]),
                stdout=_read(files["stdout"]),
                stderr=_read(files["stderr"]),
                seconds=seconds,
                plan=plan,
            )


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


# ----- machine set-up --------------------------------------------------------------------------


def _interpreter_paths() -> list[Path]:
    """The directories this interpreter reads: its installation, its environment, its packages."""
    paths = {Path(sys.executable).parent, Path(sys.executable).resolve().parent}
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        paths.add(Path(prefix))
    for packages in site.getsitepackages():
        paths.add(Path(packages))
    spec = importlib.util.find_spec("pytest")
    if spec is not None and spec.origin:
        paths.add(Path(spec.origin).parent.parent)
    return sorted({p.resolve() for p in paths if p.exists()})


def _enterable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXOTH)


def _closed_interpreter_path() -> Path | None:
    """The first directory the interpreter needs that other users may not read, or None."""
    for path in _interpreter_paths():
        if not (_enterable_by_others(path) and path.stat().st_mode & stat.S_IROTH):
            return path
        for parent in path.parents:
            if parent == Path("/") and not _enterable_by_others(parent):
                return parent
    return None


def _hidden_directories() -> list[tuple[Path, list[Path]]] | None:
    """Directories other users cannot enter on the way to the interpreter, each with the paths
    inside it the interpreter needs: ``[]`` when all is reachable, None when a needed directory is
    itself closed to others (nothing can be done then but run as root)."""
    needs: dict[Path, list[Path]] = {}
    for path in _interpreter_paths():
        if not (_enterable_by_others(path) and path.stat().st_mode & stat.S_IROTH):
            return None
        blocked = next((a for a in reversed(path.parents) if not _enterable_by_others(a)), None)
        if blocked is None:
            continue
        if blocked == Path("/"):
            return None
        needs.setdefault(blocked, []).append(path)
    # An outer blocked directory hides the inner ones; a needed path inside another is bound with it.
    outer = [d for d in needs if not any(o != d and o in d.parents for o in needs)]
    hidden = []
    for directory in sorted(outer):
        inside = sorted(p for d, ps in needs.items() if d == directory or directory in d.parents for p in ps)
        keep = [p for p in inside if not any(q != p and q in p.parents for q in inside)]
        hidden.append((directory, keep))
    return hidden


def _bwrap_args(bwrap: str, hidden: list[tuple[Path, list[Path]]], root: bool, drop: bool) -> list[str]:
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--perms", "01777", "--tmpfs", "/tmp"]
    made: set[Path] = set()
    # The private /tmp would hide an environment that lives there (a checkout in /tmp, say): bind
    # what the interpreter needs back in, read-only.
    tmp = Path("/tmp").resolve()
    in_tmp = [p for p in _interpreter_paths() if tmp in p.parents]
    _bind_back(args, tmp, [p for p in in_tmp if not any(q != p and q in p.parents for q in in_tmp)], made)
    for directory, keep in hidden:
        args += ["--perms", "0755", "--tmpfs", str(directory)]
        _bind_back(args, directory, keep, made)
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--chdir", "/tmp"]
    if root:
        # bwrap started by root keeps every capability unless told otherwise.
        # CAP_KILL lets a pre-warmed worker end its programs after they became the uid; in the
        # sandbox's pid namespace it reaches nothing else, and the drop to the uid clears it.
        args += ["--cap-drop", "ALL"] + (["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL"] if drop else [])
    return args


def _bind_back(args: list[str], directory: Path, keep: list[Path], made: set[Path]) -> None:
    """Read-only binds of ``keep`` into ``directory`` (an empty tmpfs by now), with the folders on the way."""
    for path in keep:
        for step in reversed(path.parents):
            if directory in step.parents and step not in made:
                args += ["--perms", "0755", "--dir", str(step)]
                made.add(step)
        args += ["--ro-bind", str(path), str(path)]


def build_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program that passes when ``completion`` (the function body after ``prompt``) passes ``test``."""
    return f"{prompt}{completion}\n\n\n{test}\n\n\ncheck({entry_point})\n"


__all__ = [
    "Sandbox",
    "Limits",
    "ExecutionResult",
    "SandboxUnavailable",
    "SandboxErrors",
    "build_program",
    "check_isolation",
    "ISOLATIONS",
    "STATUSES",
]
