"""The peak memory of a stage: resident memory of this process and, on a GPU, what torch allocated.

Every stage records both in its marker (``peak_memory``) and in its log line, so a run on a new
machine or model size says what each stage held instead of leaving it to arithmetic.

On Linux the process's high-water mark (``VmHWM``) is reset at the start of the stage by writing
``5`` to ``/proc/self/clear_refs``, so the figure is the stage's own peak, not the largest of the
stages before it. Where that cannot be done (another OS, a locked-down ``/proc``) the figure is
the process's peak so far, and says so (``rss_scope: process``). ``rss_start_mib`` is what the
process held when the stage began, after memory freed by earlier stages was handed back to the OS.
With several cells in threads of one process (``study.workers`` > 1) the figures cover all of them.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _release_freed() -> None:
    """Hand memory that earlier stages freed back to the OS, so that it neither counts in this
    stage's peak nor stays with a long study process: a collection, then glibc's ``malloc_trim``."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator keeps what it keeps
        return


def _cuda() -> Any:
    # torch is imported only if the stage imported it: a stage that loads no model stays light.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda
    return None


class StagePeak:
    """Measures the peak memory between ``start()`` and ``result()``."""

    def __init__(self) -> None:
        self._scope = "process"
        self._start: int | None = None

    def start(self) -> StagePeak:
        _release_freed()
        self._start = _status_kib("VmRSS")
        self._scope = "stage" if _reset_peak() else "process"
        cuda = _cuda()
        if cuda is not None:
            for device in range(cuda.device_count()):
                cuda.reset_peak_memory_stats(device)
        return self

    def result(self) -> dict[str, Any]:
        hwm = _status_kib("VmHWM")
        if hwm is None:
            # ru_maxrss is KiB on Linux and bytes on macOS; it never goes down.
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            hwm = peak // 1024 if sys.platform == "darwin" else peak
            self._scope = "process"
        out: dict[str, Any] = {"rss_mib": round(hwm / 1024, 1), "rss_scope": self._scope}
        if self._start is not None:
            out["rss_start_mib"] = round(self._start / 1024, 1)  # held before the stage began (earlier stages' leftovers)
        cuda = _cuda()
        if cuda is not None:
            # Only devices this stage touched count: a stage that ran on the CPU reports no GPU figure.
            peaks = [cuda.max_memory_allocated(device) for device in range(cuda.device_count())]
            if any(peaks):
                out["cuda_mib"] = round(max(peaks) / 2**20, 1)
        return out


def with_children(peak: dict[str, Any]) -> dict[str, Any]:
    """``peak`` or, where larger, the peak of this process's largest finished child: work handed to
    worker processes (world models trained side by side) peaks there, not here."""
    if sys.platform == "darwin" or not hasattr(resource, "RUSAGE_CHILDREN"):
        return peak
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {**peak, "rss_mib": round(child, 1), "rss_scope": "worker"} if child > peak["rss_mib"] else peak


def describe(peak: dict[str, Any]) -> str:
    """``peak RSS 1,234 MiB`` (``, GPU 5,678 MiB``) for a log line."""
    scope = peak.get("rss_scope")
    text = f"peak RSS {peak['rss_mib']:,.0f} MiB" + (
        "" if scope == "stage" else " (a worker process)" if scope == "worker" else " (process)"
    )
    if "cuda_mib" in peak:
        text += f", GPU {peak['cuda_mib']:,.0f} MiB"
    return text
