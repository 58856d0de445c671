"""Progress of long stages, for a person at a terminal and for a log file alike.

At a terminal it is a tqdm bar. Elsewhere (CI, ``nohup``, a notebook's captured output) a bar's
carriage returns make one unreadable line, so it logs ``desc: done/total unit`` at most every
``interval`` seconds and once at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("ilf.progress")


class _LogProgress:
    def __init__(self, total: int, desc: str, unit: str, interval: float) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done = 0
        self.started = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            log.info("%s: %d/%d %ss (%.0f s)", self.desc, self.done, self.total, self.unit, now - self.started)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.total:
            log.info("%s: %d/%d %ss in %.0f s", self.desc, self.done, self.total, self.unit, time.perf_counter() - self.started)

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: int, desc: str, unit: str = "it", interval: float = 30.0) -> Any:
    """A bar with ``update(n)``, ``set_postfix(...)`` and ``close()``; also a context manager."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit)
    return _LogProgress(total, desc, unit, interval)
