"""The figures of studies and rounds (matplotlib, headless): metrics against training size,
against feedback consumed, and by round."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ilf.results import RoundScores


def plot_against_size(summary: list[dict[str, Any]], columns: list[str], sizes: list[int | None], path: Path) -> None:
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


def plot_against_cost(summary: list[dict[str, Any]], columns: list[str], path: Path) -> None:
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
                if axes_key(g) == key and g["size"] in (size, None) and metric in g["metrics"] and "annotator_seconds" in g["metrics"]
            ]
            if not groups:
                continue
            label = " · ".join([f"{size} samples"] * (size is not None) + [f"{k}={v}" for k, v in json.loads(key).items()]) or "all"
            xs = [g["metrics"]["annotator_seconds"]["mean"] for g in groups]
            ys = [g["metrics"][metric]["mean"] for g in groups]
            colour = colours[index % len(colours)]
            ax.errorbar(xs, ys, yerr=[g["metrics"][metric]["sem"] for g in groups], fmt="o", capsize=3, color=colour, label=label)
            for x, y, g in zip(xs, ys, groups):
                ax.annotate(g["method"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=colour)
        ax.set_xlabel("annotator time the training read (seconds, cost.*)", fontsize=7)
        ax.set_title(metric)
    save_figure(fig, axes[0][0], path, legend_columns=4)


def plot_by_round(summary: list[dict[str, Any]], shown: list[str], count: int, path: Path) -> None:
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


def plot_run_rounds(per_round: list[RoundScores], columns: tuple[str, ...], path: Path) -> None:
    """A run of several rounds: each primary metric by round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in columns if c not in ("n", "empty", "mean_words")][:4] or list(columns[:1])
    fig, axes = plt.subplots(1, len(shown), figsize=(3.8 * len(shown), 3.2), squeeze=False)
    xs = [r.number for r in per_round]
    for ax, metric in zip(axes[0], shown):
        ax.plot(xs, [r.primary_row().get(metric, float("nan")) for r in per_round], marker="o")
        ax.set_xticks(xs)
        ax.set_xlabel("round")
        ax.set_title(metric)
    save_figure(fig, axes[0][0], path)


__all__ = ["plot_against_size", "plot_against_cost", "plot_by_round", "plot_run_rounds", "save_figure"]
