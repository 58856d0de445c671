"""Processes that end with the process that started them.

A study's worker processes, and the annotator a Label Studio round starts, must not outlive ilf:
a killed parent (SIGTERM, or kill -9, which runs no clean-up) would leave them running, holding
CPUs and locks, until someone kills them by pid. On Linux the kernel's parent-death signal ends
a child ilf starts itself (``die_with_parent``); a process further down that does not ask for it
(a Ray cluster's agents) is ended by a ``Watchdog``. Elsewhere both do nothing, and workers end
when their pipe to the parent closes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def die_with_parent(parent: int | None = None) -> None:
    """In a child process: have the kernel send it SIGTERM when its parent ends, however it ends.
    ``parent``: the pid it was started by; if that parent has already ended (before the signal
    was armed), end now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


WATCHDOG = r"""
import os, signal, sys, time

driver = int(sys.argv[1])


def stat(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19], fields[0]  # parent, start time, state
    except (OSError, IndexError, ValueError):
        return None


def tree(roots):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = stat(int(name))
            if found:
                children.setdefault(found[0], []).append(int(name))
    todo, seen = list(roots), set()
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen and child != os.getpid():
                seen.add(child)
                todo.append(child)
    return seen


signal.signal(signal.SIGTERM, lambda *_: None)  # the parent-death signal: the loop below sees the driver gone
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the driver, which ends its own work
known = {}
while os.getppid() == driver:
    for pid in tree([driver]):
        found = stat(pid)
        if found:
            known[pid] = found[1]
    time.sleep(0.5)
for pid in tree(list(known)) | set(known):  # the driver is gone: end what it left, as they were when seen
    found = stat(pid)
    if found and found[2] != "Z" and (pid not in known or known[pid] == found[1]):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass  # ended meanwhile
"""


class Watchdog:
    """A small process that outlives this one by a moment: while this process runs it notes every
    process below it (local workers, a Ray cluster this process started and its agents, local
    jobs), and when this process ends without ``stop()`` (SIGTERM, kill -9) it kills those that
    are left. Linux only (``/proc``); elsewhere it does nothing."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if sys.platform.startswith("linux"):
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", WATCHDOG, str(os.getpid())],
                preexec_fn=die_with_parent,
                start_new_session=True,  # a Ctrl-C to the terminal leaves it to clean up after the driver
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        """This process ended its work itself: nothing to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Watchdog", "die_with_parent"]
