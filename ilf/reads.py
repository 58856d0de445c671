"""What a stage read, recorded while it reads it.

A stage is up to date when everything it read still has the value it had when it ran. Nobody lists
what that is: the config, the plug-ins and the model loader report each read here while a stage
runs, and the stage's marker keeps the list. Checking a stage replays the list against the config
and the files of now; the first entry whose value differs is why the stage reruns. A stage that
takes another branch because some value changed must first have read that value, so the list it
left covers whatever it could have read instead (the verifying traces of build systems).

Each entry is ``[kind, where, value]``:

    config   a config key (a list of its parts) and its value; a mapping read as a whole is one entry
    options  a plug-in's options, ``[options_key, name]``, with their defaults filled in
    content  a file or folder outside the run directory, by its content's digest
    output   a file or folder of the run directory, relative to it, by its content's digest
    probe    what something became on this machine (``dtype`` auto, ``device`` auto, a package's
             ``version``, the code a plug-in name stands for), by the function ``probe`` names
    training the code the method the config names trains with (the finetune stage's; methods that
             train alike, ilf and ilf_best_of_n, share it)

Content digests are cached by (size, mtime, ctime, inode, device): a file written again, even with
its modification time put back (``cp -p``, ``rsync -a``), has a new ctime and is hashed again,
while a large model folder that has not changed is hashed once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

MISSING = "<missing>"  # the value of a key the config (or the disk) does not have

# ----- recording ---------------------------------------------------------------------------------


class Reads:
    """The reads of one stage (or of building one object), each once, in the order first read."""

    def __init__(self) -> None:
        self._entries: dict[str, list[Any]] = {}

    def add(self, kind: str, where: Any, value: Any) -> None:
        key = json.dumps([kind, where], sort_keys=True, default=str)
        if key not in self._entries:
            self._entries[key] = [kind, where, value]

    def merge(self, other: Reads) -> None:
        for entry in other.entries():
            self.add(*entry)

    def entries(self) -> list[list[Any]]:
        return list(self._entries.values())

    def digest(self) -> str:
        text = json.dumps(sorted(self._entries.items()), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class _Recorder:
    reads: Reads
    root: Path | None  # the run directory: files under it are recorded as outputs, relative to it
    own: frozenset[Path]  # what the stage itself writes: reading those is not an input
    started_ns: int = dataclasses.field(default_factory=time.time_ns)  # what it wrote there since is its own too


_STACK: list[_Recorder] = []  # a plain list, not a context variable: threads a stage starts read for it too
_PAUSED = threading.local()
_LOCK = threading.RLock()


@contextlib.contextmanager
def recording(root: str | Path | None = None, writes: tuple[str | Path, ...] = ()) -> Iterator[Reads]:
    """Record every read made inside the block (nested recorders each get them all)."""
    recorder = _Recorder(Reads(), Path(root).resolve() if root is not None else None, frozenset(Path(p).resolve() for p in writes))
    with _LOCK:
        _STACK.append(recorder)
    try:
        yield recorder.reads
    finally:
        with _LOCK:
            _STACK.remove(recorder)


@contextlib.contextmanager
def apart(root: str | Path | None = None) -> Iterator[Reads]:
    """Record the block's reads only here, whatever records (or is paused) around it: building an
    object whose reads every later user of it merges (``merge``)."""
    global _STACK
    recorder = _Recorder(Reads(), Path(root).resolve() if root is not None else None, frozenset())
    with _LOCK:
        outer, _STACK = _STACK, [recorder]
    depth = getattr(_PAUSED, "depth", 0)
    _PAUSED.depth = 0
    try:
        yield recorder.reads
    finally:
        _PAUSED.depth = depth
        with _LOCK:
            _STACK = outer


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Reads inside the block are not inputs (a log line, a name written beside the results)."""
    depth = getattr(_PAUSED, "depth", 0)
    _PAUSED.depth = depth + 1
    try:
        yield
    finally:
        _PAUSED.depth = depth


def active() -> bool:
    return bool(_STACK) and not getattr(_PAUSED, "depth", 0)


def note(kind: str, where: Any, value: Any) -> None:
    if not active():
        return
    with _LOCK:
        for recorder in _STACK:
            recorder.reads.add(kind, where, value)


def merge(reads: Reads) -> None:
    """Add reads recorded earlier (building an object a stage now uses) to every active recorder."""
    if not active():
        return
    with _LOCK:
        for recorder in _STACK:
            recorder.reads.merge(reads)


def note_file(path: str | Path | None) -> None:
    """A file or folder read by content: an output when it lies in the run directory."""
    if not path or not active():
        return
    resolved = Path(path).expanduser().resolve()
    digest: str | None = None  # hashed once, and only for a recorder that keeps it
    with _LOCK:
        for recorder in _STACK:
            if resolved in recorder.own or any(own in resolved.parents for own in recorder.own):
                continue
            inside = recorder.root is not None and (resolved == recorder.root or recorder.root in resolved.parents)
            if inside and resolved.exists() and resolved.stat().st_mtime_ns >= recorder.started_ns:
                continue  # scratch the stage wrote itself (a trainer's copy of the policy)
            digest = digest or content_digest(resolved)
            if inside:
                recorder.reads.add("output", str(resolved.relative_to(recorder.root)), digest)
            else:
                recorder.reads.add("content", str(resolved), digest)


def note_probe(name: str, *args: Any) -> Any:
    """What the probe ``name`` gives now, recorded; returned for the caller to use."""
    value = probe(name, *args)
    note("probe", [name, *args], value)
    return value


# ----- config objects that record their reads ---------------------------------------------------


def plain(obj: Any) -> Any:
    """``as_plain``, read without recording (what a read's value is written down as)."""
    with unrecorded():
        return as_plain(obj)


def as_plain(obj: Any) -> Any:
    """A value as JSON holds it: dataclasses as mappings, tuples as lists, anything else as text
    (read like any other read: a stage that turns a section into plain data depends on all of it)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


class Recorded:
    """A config section that reports each field read while a stage records, once ``bind`` has
    given it its key. A nested section reports its own fields; a mapping, a list or a value is one
    entry; a field marked ``path`` whose value names a local file or folder adds its content."""

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if _STACK and name[0] != "_":
            fields = object.__getattribute__(self, "__dataclass_fields__")
            if name in fields:
                key = object.__getattribute__(self, "__dict__").get("_reads_key")
                if key is not None and active() and not (isinstance(value, Recorded) and value.__dict__.get("_reads_key") is not None):
                    note("config", [*key, name], plain(value))
                    metadata = fields[name].metadata
                    if metadata.get("path") and metadata.get("contents", True) and isinstance(value, str):
                        note_local(value)
        return value


def note_local(value: str) -> None:
    local = Path(value).expanduser()
    if ":" not in value and local.exists():
        note_file(local)


def bind(config: Any, key: tuple[str, ...] = ()) -> Any:
    """``config`` with every section knowing its key, so that reads of it are recorded; a section
    that appears twice (the refiner that is the policy) becomes two, each with its own key."""
    object.__setattr__(config, "_reads_key", key)
    with unrecorded():
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if isinstance(value, Recorded):
                if value.__dict__.get("_reads_key") is not None:
                    value = _copy(value)
                    object.__setattr__(config, f.name, value)
                bind(value, (*key, f.name))
    return config


def _copy(section: Any) -> Any:
    import copy

    fresh = copy.copy(section)
    fresh.__dict__.pop("_reads_key", None)
    return fresh


def lookup(config: Any, where: list[str]) -> Any:
    """The plain value at a recorded config key now, or ``MISSING``."""
    node = config
    with unrecorded():
        for part in where:
            if dataclasses.is_dataclass(node) and not isinstance(node, type):
                if part not in {f.name for f in dataclasses.fields(node)}:
                    return MISSING
                node = getattr(node, part)
            elif isinstance(node, dict):
                if part not in node:
                    return MISSING
                node = node[part]
            else:
                return MISSING
        return as_plain(node)


# ----- content digests ---------------------------------------------------------------------------

_MEMO: dict[tuple[Any, ...], str] = {}


def _cache_path() -> Path:
    base = os.environ.get("ILF_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "ilf")
    return Path(base) / "content-digests.sqlite"


class _DigestCache:
    """(path, size, mtime, ctime, inode, device) -> sha256, kept across processes in SQLite."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._failed = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and not self._failed:
            try:
                path = _cache_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
                self._db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, stat TEXT, digest TEXT)")
            except (OSError, sqlite3.Error):
                self._failed = True  # a read-only home: digests are then computed in each process
        return self._db

    def get(self, path: str, stat: str) -> str | None:
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute("SELECT stat, digest FROM digests WHERE path = ?", (path,)).fetchone()
        except sqlite3.Error:
            return None
        return row[1] if row is not None and row[0] == stat else None

    def put(self, path: str, stat: str, digest: str) -> None:
        db = self._connect()
        if db is None:
            return
        with contextlib.suppress(sqlite3.Error):  # another process writing: this digest is computed again next time
            with db:
                db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?)", (path, stat, digest))


_CACHE = _DigestCache()


def _file_digest(path: Path) -> str:
    st = path.stat()
    stat = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"
    memo_key = (str(path), stat)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    digest = _CACHE.get(str(path), stat)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        _CACHE.put(str(path), stat, digest)
    _MEMO[memo_key] = digest
    return digest


def content_digest(path: str | Path) -> str:
    """The sha256 of a file, or of a folder's relative paths and their files' contents; ``MISSING``
    for nothing there. Names and modification times play no part: a copy has the same digest."""
    path = Path(path).expanduser()
    if path.is_file():
        return _file_digest(path.resolve())
    if not path.is_dir():
        return MISSING
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{file.relative_to(path).as_posix()}\0{_file_digest(file.resolve())}\n".encode())
    return "dir:" + h.hexdigest()


# ----- what things became on this machine ---------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return MISSING


def plugin_identity(obj: Any, name: str) -> str:
    """The code a plug-in name stands for: its module and name, and for one of one's own (not part
    of ilf, whose version is recorded) the digest of its module's source."""
    import inspect

    owner = getattr(obj, "__self__", obj)  # a task registers its class's from_options
    module = getattr(owner, "__module__", "") or ""
    identity = f"{module}:{getattr(owner, '__qualname__', name)}"
    if module.split(".")[0] != __name__.split(".")[0]:
        with contextlib.suppress(TypeError, OSError):
            identity += f"@{content_digest(inspect.getfile(owner))}"
    return identity


def _constant(spec: str) -> Any:
    """A ``module:NAME`` constant that code bumps when what it generates changes (a world's version)."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


# Each probe where it lives; those of modules that import this one are named, and imported when asked.
_PROBES: dict[str, Callable[..., Any] | str] = {
    "version": _version,
    "world_size": _world_size,
    "constant": _constant,
    "dtype": "ilf.models:dtype_probe",
    "device": "ilf.models:device_probe",
    "plugin": "ilf.registry:plugin_probe",
}


def probe(name: str, *args: Any) -> Any:
    """What the probe ``name`` gives now for ``args``."""
    found = _PROBES[name]
    if isinstance(found, str):
        import importlib

        module, _, attr = found.partition(":")
        found = _PROBES[name] = getattr(importlib.import_module(module), attr)
    return found(*args)


VERSIONED = ("ilf", "torch", "transformers", "trl")  # every stage records these packages' versions


# ----- checking ----------------------------------------------------------------------------------


def check(entries: list[list[Any]], current: Callable[[str, Any], Any]) -> str | None:
    """None when every entry still has its value; else what differs, first in reading order."""
    for kind, where, value in entries:
        try:
            now = current(kind, where)
        except Exception as err:  # noqa: BLE001 - whatever a probe or a plug-in raises: the stage reruns and says so
            return f"{_describe(kind, where)} could not be read again ({type(err).__name__}: {err})"
        if now != value:
            if kind in ("content", "output"):
                gone = " is gone" if now == MISSING else "'s content changed"
                return f"{_describe(kind, where)}{gone}"
            return f"{_describe(kind, where)} was {_short(value)}, now {_short(now)}"
    return None


def _describe(kind: str, where: Any) -> str:
    if kind == "config":
        return ".".join(str(part) for part in where)
    if kind == "options":
        return ".".join(where)
    if kind == "probe":
        return f"{where[0]}({', '.join(map(str, where[1:]))})"
    if kind == "output":
        return f"{where} (an earlier stage's output)"
    if kind == "training":
        return "the training code of the method"
    return str(where)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "MISSING",
    "Reads",
    "Recorded",
    "active",
    "apart",
    "as_plain",
    "bind",
    "check",
    "content_digest",
    "lookup",
    "merge",
    "note",
    "note_file",
    "note_probe",
    "note_local",
    "plain",
    "plugin_identity",
    "probe",
    "recording",
    "unrecorded",
]
