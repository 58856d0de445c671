"""`ilf status STUDY_DIR`: each cell of a study done, running (by which process), failed (with its
error's last line) or waiting, read from the run directories alone, while the study runs or after."""

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


__all__ = ["is_study_dir", "cell_states", "format_states"]
