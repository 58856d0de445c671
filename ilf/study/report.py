"""A study's report, from its cells' rows: ``report.md`` with a table per size, the round's
measures, gates, contrasts and failed runs; ``cells.csv``, ``cells.json``, ``summary.json``,
``contrasts.json``, ``failed.json``; the plots; and the held-out outputs as Label Studio ranking
tasks for a human evaluation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ilf.files import atomic_write_json, atomic_write_text
from ilf.plots import plot_against_cost, plot_against_size, plot_by_round
from ilf.study.config import StudyConfig
from ilf.study.statistics import aggregate, contrasts, gates


def format_cell(stats: dict[str, Any] | None, seeds: int = 1) -> str:
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
    study: StudyConfig,
    rows: list[dict[str, Any]],
    run_dir: Path,
    name: str,
    failed: list[dict[str, str]] | None = None,
    so_far: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The report of these rows; with ``so_far`` (cells done, cells in all) a report of the cells
    finished while the others run: ``report.md`` only, saying so, without plots or data files."""
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
        *(
            [f"**So far: {so_far[0]} of {so_far[1]} cells done.** This report is rewritten as cells finish, and once more at the end.", ""]
            if so_far
            else []
        ),
        f"{len(rows)} runs: methods {', '.join(study.methods)}"
        + (f"; sizes {', '.join(map(str, sizes))}" if sizes != [None] else "")
        + f"; seeds {', '.join(map(str, seeds))}.",
        "Cells: mean ± standard deviation over seeds (standard error of the mean in brackets); a single seed shows its value; "
        f"n= where fewer than the study's {expected} seeds hold one; a count that differs between seeds is shown seed by seed.",
        "",
    ]
    dtypes = sorted({r["dtype"] for r in rows if r.get("dtype")})
    if dtypes:
        lines[-1:-1] = [
            f"Held-out outputs sampled in {' and '.join(dtypes)} (`policy.dtype`; `auto` takes what this machine computes faster)."
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
                    lines.append(f"| {method} | " + " | ".join(format_cell(g["metrics"].get(c), expected) for c in columns) + " |")
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
                lines.append(
                    f"| {key} | " + " | ".join(format_cell(group(axes, size, m)["metrics"].get(key), expected) for m in methods) + " |"
                )
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
    lines += _choice_section(study, summary)
    lines += _cost_section(study, summary, expected)
    if any("annotator_seconds" in g["metrics"] for g in summary):
        lines += ["![metrics against annotator time](report_cost.png)", ""]
        if not so_far:
            plot_against_cost(summary, [c for c in columns if c != "annotator_seconds"], run_dir / "report_cost.png")
    if study.notes:
        lines += ["## Notes", "", study.notes.strip(), ""]
    report = "\n".join(lines)
    if not so_far:  # the data files and plots are the finished study's
        atomic_write_json(run_dir / "cells.json", rows)
        atomic_write_json(run_dir / "summary.json", summary)
        atomic_write_json(run_dir / "contrasts.json", {"contrasts": contrast_rows, "gates": gate_rows})
        atomic_write_json(run_dir / "failed.json", failed)
        atomic_write_text(run_dir / "cells.csv", cells_csv(rows))
        plot_against_size(summary, columns, sizes, run_dir / "report.png")
    atomic_write_text(run_dir / "report.md", report)
    return {"report": report, "summary": summary, "cells": rows, "contrasts": contrast_rows, "gates": gate_rows, "failed": failed}


def choices(study: StudyConfig, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each method a tuning study's variants run, the variant with the highest mean of
    ``study.choose[0]`` over its cells (every axis value and seed alike), ties broken by the next."""
    if not study.choose:
        return []
    by_label: dict[str, list[dict[str, Any]]] = {}
    for g in summary:
        by_label.setdefault(g["method"], []).append(g)

    def score(label: str) -> tuple[float, ...]:
        means = []
        for metric in study.choose:
            values = [g["metrics"][metric]["mean"] for g in by_label[label] if metric in g["metrics"]]
            means.append(sum(values) / len(values) if values else float("-inf"))
        return tuple(means)

    methods: dict[str, list[str]] = {}
    for label in study.methods:
        method = study.variants[label].method if label in study.variants else label
        methods.setdefault(method, []).append(label)
    rows = []
    for method, labels in methods.items():
        best = max((label for label in labels if label in by_label), key=score, default=None)
        if best is not None:
            rows.append({"method": method, "chosen": best, "of": len(labels), **dict(zip(study.choose, score(best)))})
    return rows


def _choice_section(study: StudyConfig, summary: list[dict[str, Any]]) -> list[str]:
    rows = choices(study, summary)
    if not rows:
        return []
    lines = [
        "## Choice",
        "",
        f"For each method, the setting with the highest mean {study.choose[0]} over every cell"
        + (f" (ties broken by {', then '.join(study.choose[1:])})" if study.choose[1:] else "")
        + ", computed from the unrounded means.",
        "",
        "| method | chosen | of | " + " | ".join(f"mean {m}" for m in study.choose) + " |",
        "|---|---|---|" + "---|" * len(study.choose),
    ]
    lines += [f"| {r['method']} | {r['chosen']} | {r['of']} | " + " | ".join(f"{r[m]:.5f}" for m in study.choose) + " |" for r in rows]
    return [*lines, ""]


def _cost_section(study: StudyConfig, summary: list[dict[str, Any]], seeds: int) -> list[str]:
    """What each cell's training read, by kind, and what a person would have spent on it: counts
    beside annotator-seconds (``cost.*`` prices them; Label Studio's lead times where measured)."""
    groups = [g for g in summary if "annotator_seconds" in g["metrics"]]
    if not groups:
        return []
    kinds = sorted({k.split(".", 1)[1] for g in groups for k in g["metrics"] if k.startswith("cost.")})
    budget = any("budget" in g["axes"] for g in groups)
    lines = [
        "## Cost",
        "",
        "What each method's training read, counted alike for every method (each question a person answered once), and "
        "its price in annotator-seconds (`cost.*`; a count that differs between seeds is shown seed by seed"
        + ("; `budget`: the annotator-seconds a cell was given to spend on its own kind of feedback" if budget else "")
        + ").",
        "",
        "| method | where | training samples | " + " | ".join(kinds) + " | annotator-seconds |",
        "|---|---|---|" + "---|" * len(kinds) + "---|",
    ]
    order = {m: i for i, m in enumerate(study.methods)}
    settings = list(dict.fromkeys(json.dumps(g["axes"], sort_keys=True) for g in summary))  # as the cells ran
    for g in sorted(
        groups, key=lambda g: (settings.index(json.dumps(g["axes"], sort_keys=True)), g["size"] or 0, order.get(g["method"], 99))
    ):
        where = " · ".join(x for x in (f"{g['size']} samples" if g["size"] else "", *(f"{k}={v}" for k, v in g["axes"].items())) if x)
        m = g["metrics"]
        counts = [format_cell(m.get(f"cost.{kind}"), seeds) for kind in kinds]
        lines.append(
            f"| {g['method']} | {where or 'all'} | {format_cell(m.get('train_samples'), seeds)} | "
            + " | ".join(counts)
            + f" | {format_cell(m.get('annotator_seconds'), seeds)} |"
        )
    lines.append("")
    if any("measured_share" in g["metrics"] for g in groups):
        lines += ["Where people annotated in Label Studio, their recorded lead times priced their feedback (`measured_share`).", ""]
    return lines


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
        cells_ = [format_cell(rounds[min(r, len(rounds) - 1)].get(m), seeds) for m in shown for r in range(count)]
        lines.append(f"| {g['method']} | {where or 'all'} | " + " | ".join(cells_) + " |")
    lines += ["", "![metrics by round](report_rounds.png)", ""]
    plot_by_round(summary, shown, count, run_dir / "report_rounds.png")
    return lines


def cells_csv(rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in rows for k in r["metrics"]})
    head = [k for k in rows[0] if k not in ("metrics", "stages", "rounds")] if rows else []
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(head + keys)
    for row in rows:
        writer.writerow([row.get(k) for k in head] + [row["metrics"].get(k) for k in keys])
    return buffer.getvalue()


__all__ = ["format_cell", "write_report", "cells_csv"]
