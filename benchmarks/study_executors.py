"""Study executors: how a study's cells scale from one worker to two, each worker one CPU thread,
as local processes and as tasks of a local Ray cluster.

Each variant runs the whole study into a fresh run directory, in a subprocess of its own
(`python -m ilf demo STUDY --run-dir ...`), all sharing one world-model cache that a first,
untimed run fills (or ``--world-cache``, an existing one), so the timings are the cells' and the
executors', not pre-training:

- 1 local process, 1 thread: ``study.workers: 1`` with ``OMP_NUM_THREADS=1``;
- 2 local processes, 1 thread each: ``study.workers: 2``;
- Ray, 1 (2) tasks of 1 CPU: ``--executor ray``, a local cluster of 1 (2) CPUs that the study
  starts (inside the timing).

The table gives cells per minute; below it, the scaling from 1 to 2 workers of each executor and
Ray's cost per cell over local processes with as many workers: (Ray's seconds - local seconds) /
cells. The default study is the demo's cells at 100 samples for two seeds (four groups of cells,
so two workers have the same work each).

    python benchmarks/study_executors.py [--study demo] [--set KEY=VALUE ...] [--world-cache DIR] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Row, Table, emit  # noqa: E402

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RAY = ["--executor", "ray", "--set", "study.ray.cpus_per_cell=1"]
VARIANTS = {  # name: (workers, arguments, environment)
    "1 local process, 1 thread": (1, ["--set", "study.workers=1"], ONE_THREAD),
    "2 local processes, 1 thread each": (2, ["--set", "study.workers=2"], {}),
    "Ray, 1 task of 1 CPU": (1, [*RAY, "--set", "study.ray.local_cpus=1"], {}),
    "Ray, 2 tasks of 1 CPU": (2, [*RAY, "--set", "study.ray.local_cpus=2"], {}),
}
DEFAULT_SETS = ["study.sizes=[100]", "study.seeds=[0,1]"]


def cells_span(run_dir: Path) -> float:
    """Seconds from the first stage any cell started to the last one any cell finished: the cells'
    own time, without the study's start (imports, workers spawned) and its report."""
    marks = [json.loads(p.read_text()) for p in run_dir.glob("cells/*/.ilf/stages/*.json")]
    started = [datetime.fromisoformat(m["started"]) for m in marks if "started" in m]
    finished = [datetime.fromisoformat(m["finished"]) for m in marks if "finished" in m]
    return (max(finished) - min(started)).total_seconds()


def _run(study: str, run_dir: Path, sets: list[str], extra: list[str], env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "ilf", "demo", study, "--run-dir", str(run_dir), *sets, *extra]
    environment = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local cluster of its own
    done = subprocess.run(command, capture_output=True, text=True, env={**environment, **env})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return len(json.loads((run_dir / "cells.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="demo", help="A packaged study (ilf demo's names).")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help=f"Override a study key (default: {' '.join(DEFAULT_SETS)}).",
    )
    parser.add_argument("--world-cache", help="An existing world-model cache to use instead of filling one with an untimed run.")
    parser.add_argument("--out", help="Also write the table here.")
    args = parser.parse_args()
    sets = [arg for s in (DEFAULT_SETS if args.sets is None else args.sets) for arg in ("--set", s)]
    with tempfile.TemporaryDirectory(prefix="ilf-executors-") as tmp:
        root = Path(tmp)
        cache = Path(args.world_cache).resolve() if args.world_cache else root / "warm-up" / "world-cache"
        if not args.world_cache:
            print(f"filling the world-model cache with an untimed run of {args.study}", flush=True)
            _run(args.study, root / "warm-up" / args.study, sets, ["--set", "study.workers=1"], {})
        cpu = platform.processor() or platform.machine()
        table = Table(
            f"Study executors: `ilf demo {args.study}` ({' '.join(sets[1::2])}), {os.cpu_count()} cores, {cpu}", "cells/min", per=60
        )
        spans = Table("The cells' own time (first stage started to last stage finished)", "cells/min", per=60)
        for number, (variant, (_, extra, env)) in enumerate(VARIANTS.items()):
            run_dir = root / f"variant-{number}" / args.study
            run_dir.parent.mkdir(parents=True)
            (run_dir.parent / "world-cache").symlink_to(cache)
            row = table.measure(variant, lambda run_dir=run_dir, extra=extra, env=env: _run(args.study, run_dir, sets, extra, env))
            spans.rows.append(Row(variant, row.units, cells_span(run_dir), row.peak_mib))
    rows = {row.variant: row for row in table.rows}
    cell_rows = {row.variant: row for row in spans.rows}
    names = list(VARIANTS)
    local1, local2, ray1, ray2 = (rows[name] for name in names)
    c1, c2, r1, r2 = (cell_rows[name] for name in names)
    report = table.render(names[0]) + "\n\n" + spans.render(names[0]).replace("### ", "#### ")
    report += "\n\n| from 1 to 2 workers | whole study | the cells' own time | Ray's seconds per cell over local processes |\n"
    report += "|---|---|---|---|\n"
    report += f"| local processes | {local2.rate / local1.rate:.2f}x | {c2.rate / c1.rate:.2f}x | |\n"
    report += f"| Ray tasks | {ray2.rate / ray1.rate:.2f}x | {r2.rate / r1.rate:.2f}x | |\n"
    report += f"| Ray, 1 worker | | | {(ray1.seconds - local1.seconds) / max(1, ray1.units):+.2f} |\n"
    report += f"| Ray, 2 workers | | | {(ray2.seconds - local2.seconds) / max(1, ray2.units):+.2f} |\n"
    report += "\nThe whole study's time adds what one process does once, before and after the cells: start, spawn the workers, "
    report += "write the report and its plots.\n"
    report += f"\n{local1.units} cells. Ray's time includes starting its local cluster. Peak RSS is this script's own: the studies run"
    report += f" in subprocesses. Measured {date.today()}.\n\n"
    report += projection(c1.seconds / c1.units, c2.rate / c1.rate, (ray2.seconds - local2.seconds) / max(1, ray2.units))
    emit(report, args.out)


# The grid of the ILF summarisation study (Scheurer et al. 2023): five methods, 100, 1K and 5K samples; three seeds here.
PAPER = {"methods": 5, "sizes": (100, 1000, 5000), "seeds": 3}


def projection(cell_seconds: float, scaling: float, ray_overhead: float) -> str:
    """What N one-thread workers give a study of the paper's grid, from this run's figures."""
    import math

    sizes, methods, groups = PAPER["sizes"], PAPER["methods"], PAPER["seeds"]
    group = methods * sum(size / 100 for size in sizes) * cell_seconds  # a seed's cells, in one worker
    lines = [
        f"Projected for the paper's grid ({methods} methods x {', '.join(map(str, sizes))} samples x {groups} seeds,"
        f" {methods * len(sizes) * groups} cells of this study's kind):",
        "",
        "| workers | local processes, hours | Ray, hours |",
        "|---|---|---|",
    ]
    for workers in (1, 2, 3, 4, 8):
        efficiency = 1.0 if workers == 1 else scaling / 2  # each worker's rate, as two measured it
        hours = math.ceil(groups / workers) * group / efficiency / 3600
        cells = methods * len(sizes) * math.ceil(groups / workers)
        lines.append(f"| {workers} | {hours:.2f} | {hours + cells * ray_overhead / 3600:.2f} |")
    lines += [
        "",
        "Assumed: a cell's time grows with its training samples (a 5K cell costs 50 of this run's 100-sample cells, by their"
        " own time); every",
        f"worker runs at the per-worker rate two workers' cells had here ({scaling / 2:.2f} of one alone); a study spreads its",
        f"seeds' groups, not single cells, so past {groups} workers (one per seed) nothing is gained; Ray adds its measured",
        "cost per cell.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
