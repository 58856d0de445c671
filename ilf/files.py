"""Crash-safe file writes.

Every file the pipeline produces is written to a temporary sibling and renamed into place, so a
reader (or a resumed run) sees either the old complete file or the new complete file, never half
of one. Long stages append to a journal whose complete lines survive a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from ilf.errors import IlfError


class DirectoryBusy(IlfError):
    """Another live process holds the lock."""


def _fsync_dir(directory: Path) -> None:
    # The rename itself must reach the disk, not only the file's bytes.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    # Some filesystems refuse fsync on a directory; the rename is atomic all the same.
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the file ordinary permissions
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    Used for model checkpoints: a fine-tuning run killed half-way leaves the previous model (or
    nothing) at ``path``, never a directory with half the shards.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


class Journal:
    """An append-only JSONL file whose complete lines survive a crash.

    Each ``append`` writes whole lines and fsyncs, so after a kill the file holds every record
    appended before it plus at most one torn last line, which ``recover`` cuts off.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def recover(self) -> list[dict[str, Any]]:
        """Return the complete records and truncate a torn tail left by a crash."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # bytes after the last newline belong to a torn write
        rows: list[dict[str, Any]] = []
        good = 0
        for raw in data[:end].splitlines(keepends=True):
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError:
                break  # a corrupt line ends what can be trusted
            good += len(raw)
        if good != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
        return rows

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class DirectoryLock:
    """One writer per run directory: a second ``ilf run`` on it fails instead of interleaving.

    With ``wait``, a second process waits for the holder instead (a shared cache that the first
    one is filling: the world model, a study's shared stage); a lock left by a dead process is
    taken over either way."""

    def __init__(self, path: Path, wait: bool = False) -> None:
        self.path = path
        self.wait = wait

    def __enter__(self) -> DirectoryLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stale = 0
        while stale < 2:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._holder_alive():
                    if not self.wait:
                        raise DirectoryBusy(
                            f"{self.path}: another ilf process (pid {self.path.read_text().strip()}) holds this lock"
                        ) from None
                    time.sleep(0.2)
                    continue
                self.path.unlink(missing_ok=True)  # left by a process that died
                stale += 1
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            return self
        raise DirectoryBusy(f"{self.path}: could not take the run directory lock")

    def _holder_alive(self) -> bool:
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return False
        return pid != os.getpid() and pid_alive(pid)

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid is running (one of another user's counts; a zombie, which
    has exited but not been reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal's answer stands
    return state != "Z"
