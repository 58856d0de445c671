"""`ilf study`: load a study, run its cells with the chosen executor, write the report."""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from ilf.config import to_plain
from ilf.errors import IlfError
from ilf.files import atomic_write_json, atomic_write_text
from ilf.lifetime import Watchdog
from ilf.study import executors
from ilf.study.cells import cells
from ilf.study.config import load_study
from ilf.study.report import write_report

log = logging.getLogger(__name__)


def run_study(path: str | Path, run_dir: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    study, base, source = load_study(path, overrides)
    run_dir = Path(run_dir)
    todo = cells(study, base, source)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        run_dir / "study.yaml",
        yaml.safe_dump({"source": source, "study": to_plain(study), "base": base}, sort_keys=False, allow_unicode=True),
    )
    started = time.perf_counter()
    code = code_version()  # the code as it was when the cells started, not as it may be when they end
    with Watchdog(), ReportsSoFar(study, todo, run_dir, base.get("name", "study")):
        # killed mid-way (SIGTERM, kill -9), the study leaves none of its processes behind; meanwhile
        # report.md shows the cells finished so far
        if study.executor == "local":
            pretrain_world_models(todo, run_dir, study.workers)
        if study.executor == "ray":
            results = executors.run_on_ray(todo, run_dir, study.ray)
        elif study.executor == "slurm":
            results = executors.run_on_slurm(todo, run_dir, study.slurm)
        elif study.workers > 1:
            results = executors.run_in_processes(todo, run_dir, study.workers)
        else:
            results = executors.run_here(todo, run_dir)
    rows = [row for row, _ in results if row is not None]
    failed = [failure for _, failure in results if failure is not None]
    if not rows:
        raise IlfError(f"every one of the {len(todo)} cells failed; the first: {failed[0]['cell']}: {failed[0]['error']}")
    result = write_report(study, rows, run_dir, base.get("name", "study"), failed=failed)
    result["seconds"] = time.perf_counter() - started
    result["failed"] = failed
    earlier = run_dir / "provenance.json"
    if earlier.exists() and not failed and not any(row.get("computed_now", True) for row in rows):
        pass  # every cell was up to date: the report is rewritten, and the run that computed it stays its provenance
    else:
        atomic_write_json(earlier, provenance(result["seconds"], len(todo), len(failed), code))
    return result


class ReportsSoFar:
    """While a study's cells run, rewrite ``report.md`` from the cells finished so far, every
    ``every`` seconds, and say where it is: the first tables appear long before the last cell.
    Cells count once this invocation wrote their metrics (a resumed study's earlier cells show in
    the final report). Works alike for every executor: it reads the cells' folders."""

    def __init__(self, study: Any, todo: list[Any], run_dir: Path, name: str, every: float = 20.0) -> None:
        self.study, self.todo, self.run_dir, self.name, self.every = study, todo, run_dir, name, every
        self.started = time.time()
        self.shown = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ilf-report-so-far", daemon=True)

    def __enter__(self) -> ReportsSoFar:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def finished(self) -> list[dict[str, Any]]:
        from ilf.study.cells import cell_row

        rows = []
        for cell in self.todo:
            cell_dir = self.run_dir / "cells" / cell.name
            metrics = cell_dir / "metrics.json"
            if metrics.exists() and metrics.stat().st_mtime >= self.started:
                rows.append(cell_row(cell, cell_dir))
        return rows

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                rows = self.finished()
                if len(rows) > self.shown and len(rows) < len(self.todo):
                    write_report(self.study, rows, self.run_dir, self.name, so_far=(len(rows), len(self.todo)))
                    self.shown = len(rows)
                    print(f"report so far ({len(rows)} of {len(self.todo)} cells): {self.run_dir / 'report.md'}", flush=True)
            except Exception as err:  # noqa: BLE001 - a report of some cells is a courtesy: the final one is what counts
                log.warning("could not write the report so far: %s", err)


def code_version() -> dict[str, Any]:
    """ilf's version, and its git commit where it runs from a checkout (``+changes`` when files of
    the package differ from it)."""
    import subprocess

    import ilf

    package = Path(ilf.__file__).resolve().parent
    commit = None
    try:
        head = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            commit = head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        commit = None  # not a git checkout, or no git: the version says what ran
    return {"ilf": ilf.__version__, "commit": commit}


def provenance(seconds: float, cells: int, failed: int, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """What wrote a report: the code (``code_version``, taken when the study started), the machine,
    when, and how long this invocation took (a rerun that resumed counts only its own time)."""
    import datetime as dt
    import os
    import platform

    code = code or code_version()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass  # not Linux: platform's name stands
    return {
        **code,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "cells": cells,
        "failed": failed,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
        # other work on the machine slows a run: the load over its last 15 minutes says how busy it was
        "load_15min": round(os.getloadavg()[2], 2) if hasattr(os, "getloadavg") else None,
    }


def pretrain_world_models(todo: list[Any], run_dir: Path, workers: int = 1) -> None:
    """The world models the cells name, trained before them (several side by side in up to
    ``workers`` local processes, else with every thread of this process); when
    one was trained, ``.ilf/stages/pretrain.json`` records it like a cell's stage (seconds, peak
    memory), so ``ilf status --profile`` shows pretraining apart from the stage that first asked."""
    import datetime as dt

    from ilf.files import atomic_write_json
    from ilf.memory import StagePeak, with_children
    from ilf.memory import describe as describe_peak
    from ilf.pipeline import train_world_models

    peak = StagePeak().start()
    began = dt.datetime.now(dt.timezone.utc)
    spread = functools.partial(executors.map_in_processes, workers=workers) if workers > 1 else None
    trained = train_world_models([cell.config for cell in todo], spread)
    if trained:
        memory = with_children(peak.result())
        finished = dt.datetime.now(dt.timezone.utc)
        marker = {
            "stage": "pretrain",
            "started": began.isoformat(),
            "finished": finished.isoformat(),
            "peak_memory": memory,
            "models": trained,
        }
        atomic_write_json(run_dir / ".ilf" / "stages" / "pretrain.json", marker)
        print(
            f"pretrained {len(trained)} world model(s) in {(finished - began).total_seconds():.0f} s, {describe_peak(memory)}", flush=True
        )


__all__ = ["run_study", "pretrain_world_models", "provenance"]
