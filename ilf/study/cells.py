"""A study's cells, and running them: each an ordinary run directory, one after another in this
process or spread over ``study.workers`` processes; a failed run is recorded and the others still run."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ilf.config import RunConfig, build_config, to_plain
from ilf.errors import IlfError
from ilf.files import atomic_write_text
from ilf.methods import get_method
from ilf.rounds import open_run
from ilf.study.config import StudyConfig, Variant, load_study
from ilf.study.report import write_report

log = logging.getLogger(__name__)


@dataclass
class Cell:
    name: str
    method: str  # the label in the report: a method or a variant
    seed: int
    size: int | None
    axes: dict[str, Any]
    config: RunConfig


def cells(study: StudyConfig, base: dict[str, Any], source: str) -> list[Cell]:
    axis_keys = list(study.axes)
    combos = [dict(zip(axis_keys, values)) for values in itertools.product(*study.axes.values())] or [{}]
    largest = max(study.sizes) if study.sizes else None
    result = []
    for seed in study.seeds:
        for combo in combos:
            for label in study.methods:
                variant = study.variants.get(label, Variant(method=label))

                def cell_config(size: int | None) -> RunConfig:
                    sets = [f"seed={seed}", f"method={variant.method}", *(f"{k}={json.dumps(v)}" for k, v in combo.items())]
                    if largest is not None:
                        sets += [f"data.limit={largest}", f"finetune.train_samples={json.dumps(size)}"]
                    return build_config(copy.deepcopy(base), source, [*sets, *variant.set])

                probe = cell_config(largest)
                method = get_method(probe.method)
                # a method that learns nothing from the training samples (``before``) has one cell per seed
                sized = bool(study.sizes) and method.learns_from_samples(method.configure(probe))
                for size in study.sizes if sized else [None]:
                    config = probe if size == largest else cell_config(size)
                    name = "-".join(
                        [f"seed{seed}", label, *([f"n{size}"] if size else []), *(f"{k}={_short(v)}" for k, v in combo.items())]
                    )
                    result.append(Cell(name=name, method=label, seed=seed, size=size, axes=combo, config=config))
    return result


def _short(value: Any) -> str:
    return str(value).replace("/", "_").replace(" ", "")


def _freeze_imported_modules() -> None:
    """Import the training stack once and move its objects out of the garbage collector's sight.

    Every Trainer.train() starts with a full collection (accelerate's free_memory); with torch,
    transformers and TRL imported that walks ~440k long-lived objects, 0.2-0.3 s a cell, which
    is a tenth of a tiny cell's time. Frozen objects stay alive for the process anyway."""
    import gc

    import transformers  # noqa: F401
    import trl  # noqa: F401

    gc.freeze()


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
    numbered = list(enumerate(todo, start=1))
    if study.workers == 1 or len(_groups(numbered)) == 1:
        _freeze_imported_modules()
        results = [_run_cell(number, len(todo), cell, run_dir) for number, cell in numbered]
    else:
        results = _run_parallel(_groups(numbered), len(todo), run_dir, study.workers)
    rows = [row for row, _ in results if row is not None]
    failed = [failure for _, failure in results if failure is not None]
    if not rows:
        raise IlfError(f"every one of the {len(todo)} cells failed; the first: {failed[0]['cell']}: {failed[0]['error']}")
    result = write_report(study, rows, run_dir, base.get("name", "study"), failed=failed)
    result["seconds"] = time.perf_counter() - started
    result["failed"] = failed
    return result


def _run_cell(number: int, total: int, cell: Cell, run_dir: Path) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """Run (or resume) one cell: its report row, or what its failure reports."""
    cell_dir = run_dir / "cells" / cell.name
    pipeline = open_run(cell.config, cell_dir, shared=run_dir / ".shared")
    pending = [stage for stage, state in pipeline.status().items() if state != "done"]
    prefix = f"[{number}/{total}] {cell.name}:"
    print(f"{prefix} up to date" if not pending else f"{prefix} running {', '.join(pending)}", flush=True)
    clock = time.perf_counter()
    try:
        summaries = pipeline.run()
    except Exception as err:  # noqa: BLE001 - one cell's failure is reported with the study; the other cells still run
        failure = _record_failure(cell, cell_dir, err)
        print(f"{prefix} FAILED: {failure['error']} (traceback: {failure['traceback']})", flush=True)
        return None, failure
    if pending:
        shared = [s for s, v in summaries.items() if v == "shared"]
        print(f"{prefix} done in {time.perf_counter() - clock:.0f} s" + (f" ({', '.join(shared)} shared)" if shared else ""), flush=True)
    return _cell_row(cell, cell_dir), None


def _groups(numbered: list[tuple[int, Cell]]) -> list[list[tuple[int, Cell]]]:
    """Cells that share a seed and axis values, in the study's order: they share the seed's
    feedback round, so they run one after another in one process (the first computes it)."""
    groups: dict[str, list[tuple[int, Cell]]] = {}
    for number, cell in numbered:
        groups.setdefault(json.dumps([cell.seed, cell.axes], sort_keys=True, default=str), []).append((number, cell))
    return list(groups.values())


def _run_parallel(
    groups: list[list[tuple[int, Cell]]], total: int, run_dir: Path, workers: int
) -> list[tuple[dict[str, Any] | None, dict[str, str] | None]]:
    import concurrent.futures
    import multiprocessing
    import os

    workers = min(workers, len(groups))
    threads = max(1, (os.cpu_count() or 1) // workers)
    print(f"running {len(groups)} groups of cells in {workers} processes of {threads} CPU threads each", flush=True)
    # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger("ilf").getEffectiveLevel()
    by_number: dict[int, tuple[dict[str, Any] | None, dict[str, str] | None]] = {}
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads, level)) as pool:
        futures = [pool.submit(_run_group, group, total, run_dir) for group in groups]
        for future in concurrent.futures.as_completed(futures):
            by_number.update(future.result())
    return [by_number[number] for number in sorted(by_number)]


def _start_worker(threads: int, level: int) -> None:
    import os

    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.WARNING)
    logging.getLogger("ilf").setLevel(level)
    import torch

    torch.set_num_threads(threads)
    _freeze_imported_modules()


def _run_group(group: list[tuple[int, Cell]], total: int, run_dir: Path) -> dict[int, tuple[dict[str, Any] | None, dict[str, str] | None]]:
    return {number: _run_cell(number, total, cell, run_dir) for number, cell in group}


def _record_failure(cell: Cell, cell_dir: Path, err: Exception) -> dict[str, str]:
    """What a failed cell reports: its error's last line, with the whole traceback kept in the cell's folder."""
    path = cell_dir / "error.txt"
    atomic_write_text(path, "".join(traceback.format_exception(err)))
    last = (str(err).strip().splitlines() or [""])[-1]
    return {"cell": cell.name, "error": f"{type(err).__name__}: {last}" if last else type(err).__name__, "traceback": str(path)}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The primary system's metrics and the round's, as one flat mapping of numbers."""
    values = {k: v for k, v in metrics["systems"][metrics["primary"]].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    values.update({k: v for k, v in metrics.get("round", {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return values


def _cell_row(cell: Cell, cell_dir: Path) -> dict[str, Any]:
    metrics = json.loads((cell_dir / "metrics.json").read_text())
    values = _numbers(metrics)
    markers = [json.loads(p.read_text()) for p in sorted((cell_dir / ".ilf" / "stages").glob("*.json"))]
    return {
        "cell": cell.name,
        "method": cell.method,
        "seed": cell.seed,
        "size": cell.size,
        **{f"axis:{k}": v for k, v in cell.axes.items()},
        "dir": str(cell_dir),
        # where the primary system's held-out outputs are: the last round's directory when the cell ran rounds
        "outputs_dir": str(cell_dir / f"round-{len(metrics['rounds'])}") if metrics.get("rounds") else str(cell_dir),
        "system": metrics["primary"],
        "metrics": values,
        "rounds": [_numbers(r) for r in metrics.get("rounds", [])],
        "stages": {m["stage"]: "shared" if "shared_from" in m else "computed" for m in markers},
    }


__all__ = ["Cell", "cells", "run_study"]
