"""Study executors: a packaged study's cells in one process, in two local processes, and as tasks
of a local Ray cluster with two CPUs.

Each variant runs the whole study into a fresh run directory, every variant in a subprocess of its
own (`python -m ilf demo STUDY --run-dir ...`), all sharing one world-model cache that a first,
untimed run fills, so the timings are the cells' and the executors', not pre-training. The rate is
cells per second; Ray's start of its local cluster is inside its timing. The last column gives
Ray's cost over the two local processes per cell: (Ray's seconds - the processes' seconds) / cells.

    python benchmarks/study_executors.py [--study demo_quick] [--set KEY=VALUE ...] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Table, emit  # noqa: E402

VARIANTS = {
    "one process": ["--set", "study.workers=1"],
    "2 local processes": ["--set", "study.workers=2"],
    "Ray, 2 tasks of 1 CPU": ["--executor", "ray", "--set", "study.ray.cpus_per_cell=1"],
}


def _run(study: str, run_dir: Path, sets: list[str], extra: list[str]) -> int:
    command = [sys.executable, "-m", "ilf", "demo", study, "--run-dir", str(run_dir), *sets, *extra]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local cluster of its own
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return len(json.loads((run_dir / "cells.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="demo_quick", help="A packaged study (ilf demo's names).")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="Override a study key.")
    parser.add_argument("--out", help="Also write the table here.")
    args = parser.parse_args()
    sets = [arg for s in args.sets for arg in ("--set", s)]
    with tempfile.TemporaryDirectory(prefix="ilf-executors-") as tmp:
        root = Path(tmp)
        print(f"filling the world-model cache with an untimed run of {args.study}", flush=True)
        _run(args.study, root / "warm-up" / args.study, sets, ["--set", "study.workers=1"])
        table = Table(
            f"Study executors: `ilf demo {args.study}`, {os.cpu_count()} cores, {platform.processor() or platform.machine()}", "cells/s"
        )
        for number, (variant, extra) in enumerate(VARIANTS.items()):
            run_dir = root / f"variant-{number}" / args.study
            (run_dir.parent).mkdir(parents=True)
            (run_dir.parent / "world-cache").symlink_to(root / "warm-up" / "world-cache")
            table.measure(variant, lambda run_dir=run_dir, extra=extra: _run(args.study, run_dir, sets, extra))
    rows = {row.variant: row for row in table.rows}
    ray, local = rows["Ray, 2 tasks of 1 CPU"], rows["2 local processes"]
    overhead = (ray.seconds - local.seconds) / max(1, ray.units)
    report = table.render("one process")
    report += f"\n\nRay over 2 local processes: {overhead:+.2f} s per cell (its cluster's start included). Peak RSS is this"
    report += f" script's own: the studies run in subprocesses. Measured {date.today()}."
    emit(report, args.out)


if __name__ == "__main__":
    main()
