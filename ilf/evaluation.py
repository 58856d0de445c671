"""Metrics: ROUGE against references, output length, and means with standard errors.

ROUGE comes from ``rouge-score`` (the scorer the ``evaluate`` library's ROUGE metric wraps) with
stemming; with several references a prediction is scored against its best-matching one. Called
directly because ``evaluate.load('rouge')`` fetches its script from the hub, which an offline
machine cannot reach.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(prediction: str, references: list[str]) -> dict[str, float]:
    """F1 of ROUGE-1/2/L against the best-matching reference."""
    if not references:
        raise ValueError("ROUGE needs at least one reference")
    scores = _scorer().score_multi(references, prediction)
    return {name: scores[name].fmeasure for name in ROUGE_TYPES}


def rouge_l(prediction: str, references: list[str]) -> float:
    return rouge(prediction, references)["rougeL"]


def mean_and_sem(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def summarize_outputs(predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
    """ROUGE-1/2/L means with standard errors and the mean length in words, over scored samples."""
    per_sample = [rouge(p, refs) for p, refs in zip(predictions, references) if refs]
    metrics: dict[str, Any] = {"n": len(predictions), "n_with_references": len(per_sample)}
    for name in ROUGE_TYPES:
        mean, sem = mean_and_sem([s[name] for s in per_sample])
        metrics[name] = mean
        metrics[f"{name}_sem"] = sem
    length, length_sem = mean_and_sem([float(len(p.split())) for p in predictions])
    metrics["mean_words"] = length
    metrics["mean_words_sem"] = length_sem
    metrics["empty"] = sum(1 for p in predictions if not p.strip())
    return metrics


def format_table(rows: dict[str, dict[str, Any]], columns: tuple[str, ...] = (*ROUGE_TYPES, "mean_words"), first: str = "system") -> str:
    """A Markdown table, one row per system, ``mean ± sem`` cells (counts as they are)."""
    header = f"| {first} | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for system, metrics in rows.items():
        cells = []
        for column in columns:
            value = metrics.get(column)
            sem = metrics.get(f"{column}_sem")
            if value is None:
                cells.append("-")
            elif isinstance(value, str):
                cells.append(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(str(value))
            elif sem is not None:
                cells.append(f"{value:.3f} ± {sem:.3f}" if column != "mean_words" else f"{value:.1f} ± {sem:.1f}")
            else:
                cells.append(f"{value:.3f}")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
