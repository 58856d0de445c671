"""A study's held-out outputs as Label Studio ranking tasks: a human evaluation of the systems the
study compared, written beside its report by `ilf study` (``labelstudio_ranking.json``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ilf.files import atomic_write_text
from ilf.labelstudio.sync import build_tasks
from ilf.records import Output, Sample, read_records

FILE = "labelstudio_ranking.json"


def write_ranking_tasks(rows: list[dict[str, Any]], path: Path) -> None:
    """Every method's held-out outputs and the references as Label Studio ranking tasks, for a
    human evaluation of the same systems (first seed, largest size, first value of each axis)."""
    if len({r["method"] for r in rows}) < 2:
        return
    seed = rows[0]["seed"]
    largest = max((r["size"] for r in rows if r["size"] is not None), default=None)
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["seed"] == seed and row["size"] in (largest, None):
            chosen.setdefault(row["method"], row)
    outputs: list[Output] = []
    for method, row in chosen.items():
        produced = read_records(Path(row["outputs_dir"]) / "eval_outputs.jsonl", Output)
        outputs += [dataclasses.replace(o, system=method) for o in produced if o.system == row["system"]]
    samples = read_records(Path(next(iter(chosen.values()))["outputs_dir"]) / "eval_samples.jsonl", Sample)
    outputs += [Output(sample_id=s.id, text=s.references[0], system="reference") for s in samples if s.references]
    tasks = build_tasks("ranking", samples, outputs, seed=seed)
    atomic_write_text(path, json.dumps(tasks, ensure_ascii=False))
