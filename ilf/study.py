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
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ilf.config import ConfigError, RunConfig, apply_overrides, build_config, option, parse_override, read_config_file, to_plain
from ilf.errors import IlfError
from ilf.files import atomic_write_json, atomic_write_text
from ilf.labelstudio.sync import build_tasks
from ilf.methods import get_method
from ilf.records import Output, Sample, read_records
from ilf.registry import METHODS
from ilf.rounds import open_run
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
    contrasts: list[str] = option(
        help="Paired differences over seeds, with a 95% t-interval: 'ilf - sft_initial' (two methods, on contrast_metrics) "
        "or 'ilf: hit.embedding - hit.random' (two metrics of one method's cells).",
        factory=list,
    )
    contrast_metrics: list[str] = option(help="Metrics of the method contrasts (default: the first two report metrics).", factory=list)
    gates: list[str] = option(
        help="Checks a comparison rests on, e.g. 'sft_reference recall >= 0.9': the report says at every size whether they hold.",
        factory=list,
    )
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
    for index, text in enumerate(study.contrasts):
        try:
            _parse_contrast(text)
        except ValueError as err:
            raise ConfigError(source, None, f"study.contrasts[{index}]", str(err)) from None
    for index, text in enumerate(study.gates):
        try:
            _parse_gate(text)
        except ValueError as err:
            raise ConfigError(source, None, f"study.gates[{index}]", str(err)) from None
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
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for number, cell in enumerate(todo, start=1):
        cell_dir = run_dir / "cells" / cell.name
        pipeline = open_run(cell.config, cell_dir, shared=run_dir / ".shared")
        pending = [stage for stage, state in pipeline.status().items() if state != "done"]
        prefix = f"[{number}/{len(todo)}] {cell.name}:"
        if not pending:
            print(f"{prefix} up to date", flush=True)
        else:
            print(f"{prefix} running {', '.join(pending)}", flush=True)
        clock = time.perf_counter()
        try:
            summaries = pipeline.run()
        except Exception as err:  # noqa: BLE001 - one cell's failure is reported with the study; the other cells still run
            failed.append(_record_failure(cell, cell_dir, err))
            print(f"{prefix} FAILED: {failed[-1]['error']} (traceback: {failed[-1]['traceback']})", flush=True)
            continue
        if pending:
            shared = [s for s, v in summaries.items() if v == "shared"]
            print(
                f"{prefix} done in {time.perf_counter() - clock:.0f} s" + (f" ({', '.join(shared)} shared)" if shared else ""), flush=True
            )
        rows.append(_cell_row(cell, cell_dir))
    if not rows:
        raise IlfError(f"every one of the {len(todo)} cells failed; the first: {failed[0]['cell']}: {failed[0]['error']}")
    result = write_report(study, rows, run_dir, base.get("name", "study"), failed=failed)
    write_ranking_tasks(rows, run_dir / "labelstudio_ranking.json")
    result["seconds"] = time.perf_counter() - started
    result["failed"] = failed
    return result


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


# ----- the report --------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": float("nan"), "sd": float("nan"), "sem": float("nan"), "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    counts = all(isinstance(v, int) and not isinstance(v, bool) for v in values)  # feedback consumed, say: shown as a count
    stats = {"mean": statistics.fmean(values), "sd": sd, "sem": sd / math.sqrt(len(values)), "n": len(values), "count": counts}
    if counts:
        stats["values"] = values  # a count that differs between seeds is shown seed by seed, not as a mean
    return stats


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation and SEM over seeds for each (axes, size, method) group."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        axes = tuple(sorted((k, json.dumps(v)) for k, v in row.items() if k.startswith("axis:")))
        groups.setdefault((axes, row["size"], row["method"]), []).append(row)
    summary = []
    for (axes, size, method), members in groups.items():
        keys = sorted({k for m in members for k in m["metrics"] if not k.endswith("_sem")})
        rounds = max((len(m.get("rounds", [])) for m in members), default=0)
        summary.append(
            {
                "axes": {k[5:]: json.loads(v) for k, v in axes},
                "size": size,
                "method": method,
                "seeds": [m["seed"] for m in members],
                "metrics": {k: _stats([m["metrics"].get(k) for m in members if k in m["metrics"]]) for k in keys},
                "rounds": [{k: _stats([_round(m, r).get(k) for m in members if k in _round(m, r)]) for k in keys} for r in range(rounds)],
            }
        )
    return summary


def _round(row: dict[str, Any], index: int) -> dict[str, float]:
    """A cell's metrics in round ``index``; a method with one round (it trains nothing) is the same in every round."""
    rounds = row.get("rounds") or [row["metrics"]]
    return rounds[min(index, len(rounds) - 1)]


# ----- contrasts and gates -----------------------------------------------------------------------

_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)


def _t_interval(diffs: list[float]) -> dict[str, float]:
    """Mean of paired differences with a two-sided 95% Student-t interval (n - 1 degrees of freedom)."""
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n}
    t = _T975[n - 2] if n - 2 < len(_T975) else 1.96
    half = t * statistics.stdev(diffs) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def _parse_contrast(text: str) -> tuple[str | None, str, str]:
    """'a - b' (methods) or 'method: m1 - m2' (metrics of one method): (method or None, a, b)."""
    method, _, rest = text.rpartition(":") if ":" in text else (None, "", text)
    left, sep, right = rest.partition(" - ")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f"expected 'a - b' or 'method: metric_a - metric_b', got {text!r}")
    return (method.strip() if method else None), left.strip(), right.strip()


def _parse_gate(text: str) -> tuple[str, str, str, float]:
    parts = text.split()
    if len(parts) != 4 or parts[2] not in (">=", "<="):
        raise ValueError(f"expected 'method metric >= value' (or <=), got {text!r}")
    try:
        return parts[0], parts[1], parts[2], float(parts[3])
    except ValueError:
        raise ValueError(f"the threshold of {text!r} is not a number") from None


def contrasts(study: StudyConfig, rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    """Every configured contrast at every (axes, size): the paired difference over shared seeds."""
    metrics = study.contrast_metrics or [c for c in columns if c != "mean_words"][:2]
    result = []

    def key(row: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in row.items() if k.startswith("axis:")}, sort_keys=True)

    places = list(dict.fromkeys((key(r), r["size"]) for r in rows if r["size"] is not None)) or list(
        dict.fromkeys((key(r), None) for r in rows)
    )
    largest = max((size for _, size in places if size is not None), default=None)
    for text in study.contrasts:
        method, a, b = _parse_contrast(text)
        for axes, size in places:
            if method is not None and size != largest:
                continue  # a cell's round measures are the round's, the same at every training size

            def pick(label: str) -> dict[int, dict[str, float]]:
                return {r["seed"]: r["metrics"] for r in rows if r["method"] == label and key(r) == axes and r["size"] in (size, None)}

            if method is None:
                left, right = pick(a), pick(b)
                pairs = [
                    (m, [left[s][m] - right[s][m] for s in sorted(left.keys() & right.keys()) if m in left[s] and m in right[s]])
                    for m in metrics
                ]
            else:
                cells_of = pick(method)
                pairs = [(f"{a} - {b}", [v[a] - v[b] for _, v in sorted(cells_of.items()) if a in v and b in v])]
            for metric, diffs in pairs:
                if diffs:
                    label = text if method is not None else f"{a} - {b}"
                    where = {k.removeprefix("axis:"): v for k, v in json.loads(axes).items()}
                    result.append({"contrast": label, "metric": metric, "size": size, "axes": where, **_t_interval(diffs)})
    return result


def gates(study: StudyConfig, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for text in study.gates:
        method, metric, op, threshold = _parse_gate(text)
        for g in summary:
            if g["method"] == method and metric in g["metrics"]:
                value = g["metrics"][metric]["mean"]
                held = value >= threshold if op == ">=" else value <= threshold
                result.append({"gate": text, "size": g["size"], "axes": g["axes"], "value": value, "holds": held})
    return result


def _cell(stats: dict[str, Any] | None, seeds: int = 1) -> str:
    """A report cell: mean ± sd (sem) over seeds, a count as it is (seed by seed where seeds
    differ), and ``n=`` wherever fewer than the study's ``seeds`` hold a value."""
    if not stats or stats["n"] == 0:
        return "-"
    fewer = f"n={stats['n']}" if stats["n"] < seeds else ""
    if stats.get("count"):
        values = stats.get("values") or [stats["mean"]]
        text = str(int(values[0])) if len(set(values)) == 1 else " / ".join(str(int(v)) for v in values)
        return f"{text} ({fewer})" if fewer else text
    if stats["n"] == 1:
        return f"{stats['mean']:.3f}" + (f" ({fewer})" if fewer else "")
    return f"{stats['mean']:.3f} ± {stats['sd']:.3f} ({stats['sem']:.3f}" + (f"; {fewer})" if fewer else ")")


def write_report(
    study: StudyConfig, rows: list[dict[str, Any]], run_dir: Path, name: str, failed: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    failed = failed or []
    summary = aggregate(rows)
    expected = len(study.seeds)
    sizes = sorted({r["size"] for r in rows if r["size"] is not None}) or [None]
    axis_combos = list(dict.fromkeys(json.dumps(g["axes"], sort_keys=True) for g in summary))
    output_keys = [k for r in rows for k in r["metrics"] if not k.endswith("_sem") and "." not in k]
    columns = study.report_metrics or [
        k for k in dict.fromkeys(output_keys) if k not in ("n", "n_with_references", "empty", "best_of_n", "samples_without_output")
    ]
    seeds = sorted({r["seed"] for r in rows})

    def group(axes: str, size: int | None, method: str) -> dict[str, Any] | None:
        for g in summary:
            if json.dumps(g["axes"], sort_keys=True) == axes and g["method"] == method and g["size"] in (size, None):
                return g
        return None

    lines = [
        f"# {study.title or name}",
        "",
        f"{len(rows)} runs: methods {', '.join(study.methods)}"
        + (f"; sizes {', '.join(map(str, sizes))}" if sizes != [None] else "")
        + f"; seeds {', '.join(map(str, seeds))}.",
        "Cells: mean ± standard deviation over seeds (standard error of the mean in brackets); a single seed shows its value; "
        f"n= where fewer than the study's {expected} seeds hold one; a count that differs between seeds is shown seed by seed.",
        "",
    ]
    if failed:
        lines += [
            f"**{len(failed)} of {len(rows) + len(failed)} runs failed**: their cells are missing below, and the means "
            "around them rest on the seeds that ran (n=).",
            "",
            "| failed run | error | traceback |",
            "|---|---|---|",
            *(f"| {f['cell']} | {f['error'].replace('|', '/')} | {f['traceback']} |" for f in failed),
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
                    lines.append(f"| {method} | " + " | ".join(_cell(g["metrics"].get(c), expected) for c in columns) + " |")
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
                lines.append(f"| {key} | " + " | ".join(_cell(group(axes, size, m)["metrics"].get(key), expected) for m in methods) + " |")
            lines.append("")
    gate_rows = gates(study, summary)
    if gate_rows:
        lines += ["## Gates", "", "| gate | where | mean over seeds | holds |", "|---|---|---|---|"]
        for g in gate_rows:
            where = " · ".join(x for x in (f"{g['size']} samples" if g["size"] else "", *(f"{k}={v}" for k, v in g["axes"].items())) if x)
            lines.append(
                f"| {g['gate']} | {where or 'all'} | {g['value']:.3f} | {'yes' if g['holds'] else '**NO**: comparisons below rest on it'} |"
            )
        lines.append("")
    contrast_rows = contrasts(study, rows, columns)
    if contrast_rows:
        lines += [
            "## Contrasts",
            "",
            "Paired over seeds: the mean difference and its 95% t-interval (n seeds; an interval that excludes 0 is a difference these seeds resolve).",
            "",
            "| contrast | metric | where | mean difference | 95% interval | n |",
            "|---|---|---|---|---|---|",
        ]
        for c in contrast_rows:
            where = " · ".join(x for x in (f"{c['size']} samples" if c["size"] else "", *(f"{k}={v}" for k, v in c["axes"].items())) if x)
            interval = "-" if c["n"] < 2 else f"[{c['low']:+.3f}, {c['high']:+.3f}]"
            lines.append(f"| {c['contrast']} | {c['metric']} | {where or 'all'} | {c['mean']:+.3f} | {interval} | {c['n']} |")
        lines.append("")
    lines += _round_section(study, summary, columns, run_dir, expected)
    lines += ["![metrics against training size](report.png)", ""]
    if any("feedback_cost" in g["metrics"] for g in summary):
        lines += [
            "Feedback consumed (`feedback_cost`): the critiques, comparisons, references, judgements or executions a "
            "method's training read (`cost.<kind>` in the round table).",
            "",
            "![metrics against feedback consumed](report_cost.png)",
            "",
        ]
        _plot_cost(summary, [c for c in columns if c != "feedback_cost"], run_dir / "report_cost.png")
    if study.notes:
        lines += [study.notes.strip(), ""]
    report = "\n".join(lines)

    atomic_write_json(run_dir / "cells.json", rows)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_json(run_dir / "contrasts.json", {"contrasts": contrast_rows, "gates": gate_rows})
    atomic_write_json(run_dir / "failed.json", failed)
    atomic_write_text(run_dir / "cells.csv", _csv(rows))
    atomic_write_text(run_dir / "report.md", report)
    _plot(summary, study, columns, sizes, run_dir / "report.png")
    return {"report": report, "summary": summary, "cells": rows, "contrasts": contrast_rows, "gates": gate_rows, "failed": failed}


def _round_section(study: StudyConfig, summary: list[dict[str, Any]], columns: list[str], run_dir: Path, seeds: int) -> list[str]:
    """Metrics by feedback round, for studies whose cells ran several rounds (``rounds``)."""
    count = max((len(g["rounds"]) for g in summary), default=0)
    if count < 2:
        return []
    shown = [c for c in columns if c != "mean_words"][:3]
    lines = ["## By round", "", "| method | where | " + " | ".join(f"{m} round {r}" for m in shown for r in range(1, count + 1)) + " |"]
    lines.append("|---|---|" + "---|" * (len(shown) * count))
    for g in summary:
        where = " · ".join(x for x in (f"{g['size']} per round" if g["size"] else "", *(f"{k}={v}" for k, v in g["axes"].items())) if x)
        rounds = g["rounds"] or [g["metrics"]]
        cells_ = [_cell(rounds[min(r, len(rounds) - 1)].get(m), seeds) for m in shown for r in range(count)]
        lines.append(f"| {g['method']} | {where or 'all'} | " + " | ".join(cells_) + " |")
    lines += ["", "![metrics by round](report_rounds.png)", ""]
    _plot_rounds(summary, shown, count, run_dir / "report_rounds.png")
    return lines


def _plot_rounds(summary: list[dict[str, Any]], shown: list[str], count: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.8), squeeze=False)
    xs = list(range(1, count + 1))
    for ax, metric in zip(axes[0], shown):
        for g in summary:
            rounds = g["rounds"] or [g["metrics"]]
            points = [rounds[min(r, len(rounds) - 1)].get(metric) for r in range(count)]
            if any(p is None for p in points):
                continue
            label = g["method"] + (f" n={g['size']}" if g["size"] else "") + "".join(f" {k}={v}" for k, v in g["axes"].items())
            style = {"linestyle": "--", "color": "#888888"} if len(g["rounds"]) < 2 else {"marker": "o"}
            ax.errorbar(xs, [p["mean"] for p in points], yerr=[p["sem"] for p in points], capsize=3, label=label, **style)
        ax.set_xticks(xs)
        ax.set_xlabel("round")
        ax.set_title(metric)
    save_figure(fig, axes[0][0], path, legend_columns=5)


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


def _csv(rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in rows for k in r["metrics"]})
    head = [k for k in rows[0] if k not in ("metrics", "stages", "rounds")] if rows else []
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
    save_figure(fig, axes[0][0], path, legend_columns=6)


def _plot_cost(summary: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """Each metric against the feedback a method consumed: a point per method, a colour per size
    and axis value (untrained methods join every size), ± SEM over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def axes_key(g: dict[str, Any]) -> str:
        return json.dumps(g["axes"], sort_keys=True)

    sized = list(dict.fromkeys((g["size"], axes_key(g)) for g in summary if g["size"] is not None))
    settings = sized or list(dict.fromkeys((None, axes_key(g)) for g in summary))
    shown = [c for c in columns if c != "mean_words"][:4] or columns[:1]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], shown):
        for index, (size, key) in enumerate(settings):
            groups = [
                g
                for g in summary
                if axes_key(g) == key and g["size"] in (size, None) and metric in g["metrics"] and "feedback_cost" in g["metrics"]
            ]
            if not groups:
                continue
            label = " · ".join([f"{size} samples"] * (size is not None) + [f"{k}={v}" for k, v in json.loads(key).items()]) or "all"
            xs = [g["metrics"]["feedback_cost"]["mean"] for g in groups]
            ys = [g["metrics"][metric]["mean"] for g in groups]
            colour = colours[index % len(colours)]
            ax.errorbar(xs, ys, yerr=[g["metrics"][metric]["sem"] for g in groups], fmt="o", capsize=3, color=colour, label=label)
            for x, y, g in zip(xs, ys, groups):
                ax.annotate(g["method"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=colour)
        ax.set_xlabel("feedback consumed (critiques, comparisons, references, judgements, executions)", fontsize=7)
        ax.set_title(metric)
    save_figure(fig, axes[0][0], path, legend_columns=4)


def save_figure(fig: Any, legend_from: Any, path: Path, legend_columns: int = 6) -> None:
    """The figure with one legend below the plots (from ``legend_from``'s lines), written atomically."""
    import matplotlib.pyplot as plt

    handles, labels = legend_from.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(legend_columns, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07 + 0.04 * math.ceil(len(labels) / legend_columns) if handles else 0, 1, 1))
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["StudyConfig", "Variant", "Cell", "load_study", "cells", "run_study", "aggregate", "write_report"]
