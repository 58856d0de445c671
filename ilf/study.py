"""A study: a base run config swept over methods, training sizes, seeds and any other key.

    ilf study experiments/slf5k_study.yaml --run-dir runs/slf5k_study

A study config is a run config plus a ``study`` section. Every cell is an ordinary run directory
(``cells/<name>/``, with its own resolved ``config.yaml``: ``ilf run <cell>/config.yaml --run-dir
<cell>`` finds it up to date). Sizes are nested like SLF5K's 100 in 1K in 5K: every cell of a seed
runs its feedback round on the largest size and trains on the first N samples
(``finetune.train_samples``), so stages with equal fingerprints are computed once, in whichever
cell comes first, and linked into the others through ``.shared/``. A killed study resumes at the
cell and stage where it stopped. The report (``report.md``, ``report.png``, ``cells.csv``,
``cells.json``, ``summary.json``) is computed from the cells' ``metrics.json`` and nothing else.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import itertools
import json
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ilf.config import ConfigError, RunConfig, apply_overrides, build_config, option, parse_override, read_config_file, to_plain
from ilf.files import atomic_write_json, atomic_write_text
from ilf.labelstudio.sync import build_tasks
from ilf.methods import get_method
from ilf.pipeline import Pipeline
from ilf.records import Output, Sample, read_records
from ilf.registry import METHODS
from ilf.schema import build

log = logging.getLogger(__name__)


@dataclass
class Variant:
    method: str = option("ilf", "The registered method this variant runs.")
    set: list[str] = option(help="--set style overrides for this variant's cells only.", factory=list)


@dataclass
class StudyConfig:
    methods: list[str] = option(
        help="Methods (registered names, or names of variants) compared in every seed and size.", factory=lambda: ["ilf"]
    )
    sizes: list[int] = option(
        help="Training-set sizes, nested: each seed's round runs on the largest, each cell trains on "
        "the first N. Empty: data.limit as configured.",
        factory=list,
    )
    seeds: list[int] = option(help="Run seeds (run config `seed`); the report gives mean, std and SEM over them.", factory=lambda: [0])
    axes: dict[str, list[Any]] = option(
        help="Any other config key swept as an axis, e.g. {selection.method: [embedding, random]}.", factory=dict
    )
    variants: dict[str, Variant] = option(
        help="Named methods with their own overrides, e.g. {ilf_random: {method: ilf, set: [selection.method=random]}}.", factory=dict
    )
    report_metrics: list[str] = option(help="Columns of the report (default: every metric's columns).", factory=list)
    title: str = option("", "Heading of the report (default: the run name).")
    notes: str = option("", "Markdown appended to the report (what the metrics mean, say).")


@dataclass
class Cell:
    name: str
    method: str  # the label in the report: a method or a variant
    seed: int
    size: int | None
    axes: dict[str, Any]
    config: RunConfig


def load_study(path: str | Path, overrides: list[str] | None = None) -> tuple[StudyConfig, dict[str, Any], str]:
    """The study section and the base run config (raw, validated once) of a study config file."""
    raw = read_config_file(path)
    study_raw = raw.pop("study", None) or {}
    if not isinstance(study_raw, dict):
        raise ConfigError(path, None, "study", "must be a mapping")
    run_overrides = []
    for text in overrides or []:
        keys, _ = parse_override(text)
        if keys[0] == "study":
            apply_overrides(study_raw, [text.partition(".")[2]])
        else:
            run_overrides.append(text)
    source = str(path) + (" (with --set)" if overrides else "")
    try:
        study = build(StudyConfig, study_raw, ConfigError, source)
    except ConfigError as err:
        raise ConfigError(source, err.line, f"study.{err.field}" if err.field else "study", err.problem) from None
    for field_name, values in (("methods", study.methods), ("seeds", study.seeds)):
        if not values:
            raise ConfigError(source, None, f"study.{field_name}", "must list at least one")
    for label in study.methods:
        method = study.variants[label].method if label in study.variants else label
        if method not in METHODS:
            METHODS.get(method)  # raises with the registered names and the closest one
    if any(size < 1 for size in study.sizes):
        raise ConfigError(source, None, "study.sizes", f"sizes must be positive, got {study.sizes}")
    base = apply_overrides(raw, run_overrides)
    build_config(copy.deepcopy(base), source)  # a bad base config fails before any cell runs
    return study, base, source


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
                sized = bool(study.sizes) and (method.trains or "reward" in method.stages(method.configure(probe)))
                for size in study.sizes if sized else [None]:
                    config = probe if size == largest else cell_config(size)
                    name = "-".join(
                        [f"seed{seed}", label, *([f"n{size}"] if size else []), *(f"{k}={_short(v)}" for k, v in combo.items())]
                    )
                    result.append(Cell(name=name, method=label, seed=seed, size=size, axes=combo, config=config))
    return result


def _short(value: Any) -> str:
    return str(value).replace("/", "_").replace(" ", "")


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
    rows = []
    for number, cell in enumerate(todo, start=1):
        cell_dir = run_dir / "cells" / cell.name
        pipeline = Pipeline(cell.config, cell_dir, shared=run_dir / ".shared")
        pending = [stage for stage, state in pipeline.status().items() if state != "done"]
        prefix = f"[{number}/{len(todo)}] {cell.name}:"
        if not pending:
            print(f"{prefix} up to date", flush=True)
        else:
            print(f"{prefix} running {', '.join(pending)}", flush=True)
        clock = time.perf_counter()
        summaries = pipeline.run()
        if pending:
            shared = [s for s, v in summaries.items() if v == "shared"]
            print(
                f"{prefix} done in {time.perf_counter() - clock:.0f} s" + (f" ({', '.join(shared)} shared)" if shared else ""), flush=True
            )
        rows.append(_cell_row(cell, cell_dir))
    result = write_report(study, rows, run_dir, base.get("name", "study"))
    write_ranking_tasks(rows, run_dir / "labelstudio_ranking.json")
    result["seconds"] = time.perf_counter() - started
    return result


def _cell_row(cell: Cell, cell_dir: Path) -> dict[str, Any]:
    metrics = json.loads((cell_dir / "metrics.json").read_text())
    primary = metrics["systems"][metrics["primary"]]
    values = {k: v for k, v in primary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    values.update({k: v for k, v in metrics.get("round", {}).items() if isinstance(v, (int, float))})
    markers = [json.loads(p.read_text()) for p in sorted((cell_dir / ".ilf" / "stages").glob("*.json"))]
    return {
        "cell": cell.name,
        "method": cell.method,
        "seed": cell.seed,
        "size": cell.size,
        **{f"axis:{k}": v for k, v in cell.axes.items()},
        "dir": str(cell_dir),
        "system": metrics["primary"],
        "metrics": values,
        "stages": {m["stage"]: "shared" if "shared_from" in m else "computed" for m in markers},
    }


# ----- the report --------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": float("nan"), "sd": float("nan"), "sem": float("nan"), "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "sem": sd / math.sqrt(len(values)), "n": len(values)}


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation and SEM over seeds for each (axes, size, method) group."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        axes = tuple(sorted((k, json.dumps(v)) for k, v in row.items() if k.startswith("axis:")))
        groups.setdefault((axes, row["size"], row["method"]), []).append(row)
    summary = []
    for (axes, size, method), members in groups.items():
        keys = sorted({k for m in members for k in m["metrics"] if not k.endswith("_sem")})
        summary.append(
            {
                "axes": {k[5:]: json.loads(v) for k, v in axes},
                "size": size,
                "method": method,
                "seeds": [m["seed"] for m in members],
                "metrics": {k: _stats([m["metrics"].get(k) for m in members if k in m["metrics"]]) for k in keys},
            }
        )
    return summary


def _cell(stats: dict[str, float] | None) -> str:
    if not stats or stats["n"] == 0:
        return "-"
    if stats["n"] == 1:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['sd']:.3f} ({stats['sem']:.3f})"


def write_report(study: StudyConfig, rows: list[dict[str, Any]], run_dir: Path, name: str) -> dict[str, Any]:
    summary = aggregate(rows)
    sizes = sorted({r["size"] for r in rows if r["size"] is not None}) or [None]
    axis_combos = list(dict.fromkeys(json.dumps(g["axes"], sort_keys=True) for g in summary))
    output_keys = [k for r in rows for k in r["metrics"] if not k.endswith("_sem") and "." not in k]
    columns = study.report_metrics or [k for k in dict.fromkeys(output_keys) if k not in ("n", "n_with_references", "empty", "best_of_n")]
    seeds = sorted({r["seed"] for r in rows})

    def group(axes: str, size: int | None, method: str) -> dict[str, Any] | None:
        for g in summary:
            if json.dumps(g["axes"], sort_keys=True) == axes and g["method"] == method and g["size"] in (size, None):
                return g
        return None

    lines = [
        f"# {study.title or name}",
        "",
        f"{len(rows)} runs: methods {', '.join(study.methods)}; sizes {', '.join(map(str, sizes))}; seeds {', '.join(map(str, seeds))}.",
        "Cells: mean ± standard deviation over seeds (standard error of the mean in brackets); a single seed shows its value.",
        "",
    ]
    for axes in axis_combos:
        label = ", ".join(f"{k}={v}" for k, v in json.loads(axes).items())
        for size in sizes:
            heading = " · ".join(x for x in (f"{size} training samples" if size else "", label) if x) or "results"
            lines += [f"## {heading}", "", "| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
            for method in study.methods:
                g = group(axes, size, method)
                if g is not None:
                    lines.append(f"| {method} | " + " | ".join(_cell(g["metrics"].get(c)) for c in columns) + " |")
            lines.append("")
        round_keys = sorted({k for g in summary for k in g["metrics"] if "." in k and json.dumps(g["axes"], sort_keys=True) == axes})
        if round_keys:
            size = sizes[-1]
            methods = [m for m in study.methods if (g := group(axes, size, m)) and any(k in g["metrics"] for k in round_keys)]
            lines += [
                f"## The feedback round and the training targets ({size or 'all'} samples{', ' + label if label else ''})",
                "",
                "| measure | " + " | ".join(methods) + " |",
                "|---|" + "---|" * len(methods),
            ]
            for key in round_keys:
                lines.append(f"| {key} | " + " | ".join(_cell(group(axes, size, m)["metrics"].get(key)) for m in methods) + " |")
            lines.append("")
    lines += ["![metrics against training size](report.png)", ""]
    if study.notes:
        lines += [study.notes.strip(), ""]
    report = "\n".join(lines)

    atomic_write_json(run_dir / "cells.json", rows)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "cells.csv", _csv(rows))
    atomic_write_text(run_dir / "report.md", report)
    _plot(summary, study, columns, sizes, run_dir / "report.png")
    return {"report": report, "summary": summary, "cells": rows}


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
        produced = read_records(Path(row["dir"]) / "eval_outputs.jsonl", Output)
        outputs += [dataclasses.replace(o, system=method) for o in produced if o.system == row["system"]]
    samples = read_records(Path(next(iter(chosen.values()))["dir"]) / "eval_samples.jsonl", Sample)
    outputs += [Output(sample_id=s.id, text=s.references[0], system="reference") for s in samples if s.references]
    tasks = build_tasks("ranking", samples, outputs, seed=seed)
    atomic_write_text(path, json.dumps(tasks, ensure_ascii=False))


def _csv(rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in rows for k in r["metrics"]})
    head = [k for k in rows[0] if k not in ("metrics", "stages")] if rows else []
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(head + keys)
    for row in rows:
        writer.writerow([row.get(k) for k in head] + [row["metrics"].get(k) for k in keys])
    return buffer.getvalue()


def _plot(summary: list[dict[str, Any]], study: StudyConfig, columns: list[str], sizes: list[int | None], path: Path) -> None:
    """Each metric against training size, a line per method (and axis value), ± SEM over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in columns if c != "mean_words"][:6] or columns[:1]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.8), squeeze=False)
    xs = [s for s in sizes if s is not None]
    for ax, metric in zip(axes[0], shown):
        if not xs:  # no sizes to plot against: one bar per method (and axis value)
            groups = [g for g in summary if metric in g["metrics"]]
            labels = [g["method"] + "".join(f"\n{k}={v}" for k, v in g["axes"].items()) for g in groups]
            ax.bar(
                range(len(groups)),
                [g["metrics"][metric]["mean"] for g in groups],
                yerr=[g["metrics"][metric]["sem"] for g in groups],
                color="#1f5fbf",
                capsize=3,
            )
            ax.set_xticks(range(len(groups)), [label.replace("_", "\n", 1) for label in labels], fontsize=7)
            ax.set_title(metric)
            continue
        lines: dict[str, list[tuple[int | None, dict[str, float]]]] = {}
        for g in summary:
            if metric in g["metrics"]:
                label = g["method"] + "".join(f" {k}={v}" for k, v in g["axes"].items())
                lines.setdefault(label, []).append((g["size"], g["metrics"][metric]))
        for label, points in lines.items():
            if all(size is None for size, _ in points) and xs:  # untrained: the same at every size
                ax.plot(xs, [points[0][1]["mean"]] * len(xs), linestyle="--", color="#888888", label=label)
                continue
            points = sorted((p for p in points if p[0] is not None), key=lambda p: p[0])
            ax.errorbar(
                [p[0] for p in points],
                [p[1]["mean"] for p in points],
                yerr=[p[1]["sem"] for p in points],
                marker="o",
                capsize=3,
                label=label,
            )
        if len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log")
        ax.set_xlabel("training samples")
        ax.set_title(metric)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["StudyConfig", "Variant", "Cell", "load_study", "cells", "run_study", "aggregate", "write_report"]
