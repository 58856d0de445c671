"""The child side of the sandbox: runs one program and reports how it ended.

The parent passes this file's source with ``python -I -c`` and one JSON argument (one process
per program), or hands it to the pre-warmed worker (``worker.py``), whose forked children call
``limit``, ``drop_to`` and ``execute``; it never imports ilf, so it runs wherever the interpreter
runs (inside bubblewrap too). It reads the program from the first file descriptor it is given,
applies the resource limits, drops to the unprivileged uid it is given, executes the program in a
fresh namespace and writes a JSON verdict to the second descriptor. A program that ends any other way (killed, ``os._exit``,
crashed) leaves no verdict, and the parent reports it as not passed: only a program that ran to
its last line passes. ``faulthandler`` writes the running frames to the third descriptor shortly
before the wall-clock limit, so a timeout can name the test that was running.
"""

import faulthandler
import json
import linecache
import os
import resource
import signal
import sys
import traceback

FILENAME = "program.py"
MAX_TEXT = 400


def _statement(frame: traceback.FrameSummary, lines: list[str]) -> str:
    """The whole statement a frame was executing (an assertion may span lines), on one line."""
    first = frame.lineno or 0
    last = getattr(frame, "end_lineno", None) or first
    if not 1 <= first <= len(lines):
        return (frame.line or "").strip()[:MAX_TEXT]
    text = " ".join(line.strip() for line in lines[first - 1 : min(last, first + 20)])
    return text[:MAX_TEXT]


def describe(exc: BaseException, lines: list[str]) -> dict:
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    report = {"status": "memory_error" if isinstance(exc, MemoryError) else "failed", "error": (error[-1] if error else "")[:MAX_TEXT]}
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        report.update(lineno=exc.lineno, line=(exc.text or "").strip()[:MAX_TEXT])
        return report
    if isinstance(exc, SystemExit):
        report["error"] = f"SystemExit({exc.code!r}): the program exited before its tests finished"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    if frames:
        report.update(lineno=frames[-1].lineno, line=_statement(frames[-1], lines))
        in_check = [f for f in frames if f.name == "check"]
        if in_check and in_check[-1] is not frames[-1]:
            report["test"] = _statement(in_check[-1], lines)
    return report


def limit(settings: dict) -> None:
    """Resource limits of the program's process; its children inherit them."""
    megabyte = 1024 * 1024
    cpu = int(settings["timeout"]) + 2
    resource.setrlimit(resource.RLIMIT_AS, (settings["memory_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (settings["file_size_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # a backstop to the parent's wall clock
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (settings["processes"],) * 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file size limit fails with an error instead


def drop_to(uid: int) -> None:
    """Root is exempt from RLIMIT_NPROC and may write anywhere: run as an unprivileged uid."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def execute(source: str, verdict_fd: int, trace_fd: int, trace_after: float, uid: int | None = None) -> None:
    """Run ``source`` as ``__main__`` in this process and write its verdict to ``verdict_fd``;
    never returns. Drops to ``uid`` after starting the trace, so the trace thread exists before
    the process limit applies to the program."""
    # Bound before the program runs: it may replace os, json or sys.stdout.
    exit_now, write, getpid, dumps = os._exit, os.write, os.getpid, json.dumps
    harness_pid = getpid()
    lines = source.splitlines()
    linecache.cache[FILENAME] = (len(source), None, [line + "\n" for line in lines], FILENAME)
    trace = os.fdopen(trace_fd, "w")
    faulthandler.dump_traceback_later(trace_after, file=trace)
    if uid is not None:
        drop_to(uid)

    streams = (sys.__stdout__, sys.__stderr__)

    def report(verdict: dict) -> None:
        if getpid() != harness_pid:
            exit_now(1)  # a child the program forked: only the program's own process gives the verdict
        for stream in (sys.stdout, sys.stderr, *streams):
            try:
                stream.flush()  # what the program printed, before os._exit skips the flush
            except Exception:  # a stream the program closed or replaced: the verdict matters more
                continue
        write(verdict_fd, dumps(verdict).encode())
        exit_now(0 if verdict["status"] == "passed" else 1)

    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        code = compile(source, FILENAME, "exec")
        exec(code, namespace)
    except BaseException as exc:  # the program's own failure, whatever it is, is the verdict
        verdict = describe(exc, lines)
        # Free what a memory hog allocated (its globals, its frames' locals), so the verdict can be written.
        traceback.clear_frames(exc.__traceback__)
        namespace.clear()
        report(verdict)
    report({"status": "passed"})


def main() -> None:
    settings = json.loads(sys.argv[1])
    source_fd, verdict_fd, trace_fd = settings["fds"]
    with os.fdopen(source_fd, "rb") as handle:
        source = handle.read().decode("utf-8", errors="replace")
    limit(settings)
    execute(source, verdict_fd, trace_fd, settings["trace_after"], settings.get("uid"))


if __name__ == "__main__":
    main()
