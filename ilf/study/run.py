"""`ilf study`: load a study, run its cells with the chosen executor, write the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from ilf.config import to_plain
from ilf.errors import IlfError
from ilf.files import atomic_write_text
from ilf.study import executors
from ilf.study.cells import cells
from ilf.study.config import load_study
from ilf.study.report import write_report


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
    if study.executor == "local":
        pretrain_world_models(todo, run_dir)
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
    return result


def pretrain_world_models(todo: list[Any], run_dir: Path) -> None:
    """The world models the cells name, trained before them with every thread of this process; when
    one was trained, ``.ilf/stages/pretrain.json`` records it like a cell's stage (seconds, peak
    memory), so ``ilf status --profile`` shows pretraining apart from the stage that first asked."""
    import datetime as dt

    from ilf.files import atomic_write_json
    from ilf.memory import StagePeak
    from ilf.memory import describe as describe_peak
    from ilf.pipeline import train_world_models

    peak = StagePeak().start()
    began = dt.datetime.now(dt.timezone.utc)
    trained = train_world_models([cell.config for cell in todo])
    if trained:
        memory = peak.result()
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


__all__ = ["run_study", "pretrain_world_models"]
