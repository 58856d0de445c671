"""A study's cells, and running one: each an ordinary run directory; a failed run is recorded and
the others still run (``executors`` decides where each runs)."""

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

from ilf.config import RunConfig, build_config
from ilf.files import atomic_write_text
from ilf.layout import RunPaths, round_dir
from ilf.methods import get_method
from ilf.results import RunResult
from ilf.rounds import open_run
from ilf.study.config import StudyConfig, Variant

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
    if study.budgets:  # an axis of its own: each method spends it on its own kind of feedback
        combos = [
            {**combo, "budget": int(budget) if float(budget).is_integer() else budget} for combo in combos for budget in study.budgets
        ]
    largest = max(study.sizes) if study.sizes else None
    result = []
    for seed in study.seeds:
        for combo in combos:
            for label in study.methods:
                variant = study.variants.get(label, Variant(method=label))
                settings = {k: v for k, v in combo.items() if k != "budget"}

                def cell_config(size: int | None) -> RunConfig:
                    sets = [f"seed={seed}", f"method={variant.method}", *(f"{k}={json.dumps(v)}" for k, v in settings.items())]
                    if largest is not None:
                        sets += [f"data.limit={largest}", f"finetune.train_samples={json.dumps(size)}"]
                    return build_config(copy.deepcopy(base), source, [*sets, *variant.set])

                probe = cell_config(largest)
                method = get_method(probe.method, probe)
                if "budget" in combo:
                    probe = method.at_budget(probe, float(combo["budget"]))
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


def run_cell(number: int, total: int, cell: Cell, run_dir: Path) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
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
    return {**cell_row(cell, cell_dir), "computed_now": bool(pending)}, None


def _record_failure(cell: Cell, cell_dir: Path, err: Exception) -> dict[str, str]:
    """What a failed cell reports: its error's last line, with the whole traceback kept in the cell's folder."""
    path = cell_dir / "error.txt"
    atomic_write_text(path, "".join(traceback.format_exception(err)))
    last = (str(err).strip().splitlines() or [""])[-1]
    return {"cell": cell.name, "error": f"{type(err).__name__}: {last}" if last else type(err).__name__, "traceback": str(path)}


def cell_row(cell: Cell, cell_dir: Path) -> dict[str, Any]:
    result = RunResult.read(RunPaths(cell_dir).metrics)
    markers = [json.loads(p.read_text()) for p in sorted((cell_dir / ".ilf" / "stages").glob("*.json"))]
    return {
        "cell": cell.name,
        "method": cell.method,
        "seed": cell.seed,
        "size": cell.size,
        **{f"axis:{k}": v for k, v in cell.axes.items()},
        "dir": str(cell_dir),
        # where the primary system's held-out outputs are: the last round's directory when the cell ran rounds
        "outputs_dir": str(round_dir(cell_dir, len(result.rounds))) if result.rounds else str(cell_dir),
        "system": result.primary,
        # the weights' type its held-out outputs were sampled in (dtype auto depends on the machine)
        "dtype": (result.primary_row().get("generation") or {}).get("dtype") or None,
        "metrics": result.numbers(),
        "rounds": [r.numbers() for r in result.rounds or []],
        "stages": {m["stage"]: "shared" if "shared_from" in m else "computed" for m in markers},
    }


__all__ = ["Cell", "cells", "run_cell", "cell_row"]
