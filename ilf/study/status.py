"""`ilf status STUDY_DIR`: each cell of a study done, running (by which process), failed (with its
error's last line) or waiting, read from the run directories alone, while the study runs or after.
``--profile`` adds where the time went: seconds and peak memory by stage, from the stage markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ilf.config import ConfigError
from ilf.errors import IlfError
from ilf.files import pid_alive
from ilf.schema import build
from ilf.study.cells import cells
from ilf.study.config import StudyConfig


def is_study_dir(path: str | Path) -> bool:
    return (Path(path) / "study.yaml").is_file()


def cell_states(run_dir: Path) -> list[dict[str, Any]]:
    """One entry per cell of the study in ``run_dir``, in the study's order: ``cell``, ``state``
    (done, running, failed, waiting) and ``detail`` (the holder's pid, or the error's last line)."""
    saved = yaml.safe_load((run_dir / "study.yaml").read_text())
    study = build(StudyConfig, saved["study"], ConfigError, str(run_dir / "study.yaml"))
    found = []
    for cell in cells(study, saved["base"], saved["source"]):
        folder = run_dir / "cells" / cell.name
        metrics, error, lock = folder / "metrics.json", folder / "error.txt", folder / ".ilf" / "lock"
        holder = _holder(lock)
        if holder is not None:
            state, detail = "running", f"pid {holder}"
        elif error.exists() and (not metrics.exists() or error.stat().st_mtime > metrics.stat().st_mtime):
            lines = error.read_text(errors="replace").strip().splitlines()
            state, detail = "failed", lines[-1] if lines else ""
        elif metrics.exists():
            state, detail = "done", ""
        else:
            state, detail = "waiting", ""
        found.append({"cell": cell.name, "state": state, "detail": detail})
    return found


def _holder(lock: Path) -> int | None:
    try:
        pid = int(lock.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def format_states(states: list[dict[str, Any]]) -> str:
    if not states:
        raise IlfError("the study has no cells")
    width = max(len(s["cell"]) for s in states)
    lines = [f"{s['cell']:{width}s}  {s['state']}" + (f" ({s['detail']})" if s["detail"] else "") for s in states]
    counts = {state: sum(s["state"] == state for s in states) for state in ("done", "running", "failed", "waiting")}
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items()) + f" of {len(states)} cells")
    return "\n".join(lines)


def computed_stages(run_dir: Path) -> list[dict[str, Any]]:
    """Every stage the study's cells computed (a stage one cell computed and others linked counts
    once), in the order they ran: its marker with ``cell`` (the cell's folder) and ``seconds``."""
    import datetime as dt
    import json

    found = []
    # the study's own stages (pretraining the world models before the cells) beside the cells'
    for marker in [*Path(run_dir).glob(".ilf/stages/*.json"), *Path(run_dir).glob("cells/*/.ilf/stages/*.json")]:
        record = json.loads(marker.read_text())
        if "shared_from" in record:
            continue
        seconds = (dt.datetime.fromisoformat(record["finished"]) - dt.datetime.fromisoformat(record["started"])).total_seconds()
        found.append({**record, "cell": marker.parent.parent.parent, "seconds": seconds})
    return sorted(found, key=lambda record: record["started"])


def stage_profile(run_dir: Path) -> list[dict[str, Any]]:
    """Seconds and peak resident memory of every stage kind over the study's cells, the costliest first."""
    by_stage: dict[str, dict[str, Any]] = {}
    for record in computed_stages(run_dir):
        row = by_stage.setdefault(record["stage"], {"stage": record["stage"], "computed": 0, "seconds": 0.0, "peak_rss_mib": 0.0})
        row["computed"] += 1
        row["seconds"] += record["seconds"]
        row["peak_rss_mib"] = max(row["peak_rss_mib"], record.get("peak_memory", {}).get("rss_mib", 0.0))
    return sorted(by_stage.values(), key=lambda row: -row["seconds"])


def format_profile(rows: list[dict[str, Any]]) -> str:
    total = sum(row["seconds"] for row in rows) or 1.0
    lines = ["| stage | computed | seconds | share | largest peak RSS MiB |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['stage']} | {row['computed']} | {row['seconds']:,.0f} | {row['seconds'] / total:.0%} | "
            + (f"{row['peak_rss_mib']:,.0f}" if row["peak_rss_mib"] else "-")
            + " |"
        )
    return "\n".join(lines)


__all__ = ["is_study_dir", "cell_states", "format_states", "computed_stages", "stage_profile", "format_profile"]
