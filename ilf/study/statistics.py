"""A study's statistics over seeds: each group's mean, standard deviation and SEM, the paired
contrasts with their t-intervals, and the gates the comparisons rest on."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from ilf.study.config import StudyConfig, parse_contrast, parse_gate


def seed_stats(values: list[float]) -> dict[str, float]:
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
                "metrics": {k: seed_stats([m["metrics"].get(k) for m in members if k in m["metrics"]]) for k in keys},
                "rounds": [
                    {k: seed_stats([round_metrics(m, r).get(k) for m in members if k in round_metrics(m, r)]) for k in keys}
                    for r in range(rounds)
                ],
            }
        )
    return summary


def round_metrics(row: dict[str, Any], index: int) -> dict[str, float]:
    """A cell's metrics in round ``index``; a method with one round (it trains nothing) is the same in every round."""
    rounds = row.get("rounds") or [row["metrics"]]
    return rounds[min(index, len(rounds) - 1)]


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)


def t_interval(diffs: list[float]) -> dict[str, float]:
    """Mean of paired differences with a two-sided 95% Student-t interval (n - 1 degrees of freedom)."""
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n}
    t = _T975[n - 2] if n - 2 < len(_T975) else 1.96
    half = t * statistics.stdev(diffs) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


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
        method, a, b = parse_contrast(text)
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
                    result.append({"contrast": label, "metric": metric, "size": size, "axes": where, **t_interval(diffs)})
    return result


def gates(study: StudyConfig, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for text in study.gates:
        method, metric, op, threshold, size = parse_gate(text)
        for g in summary:
            if g["method"] == method and metric in g["metrics"] and (size is None or g["size"] == size):
                value = g["metrics"][metric]["mean"]
                held = value >= threshold if op == ">=" else value <= threshold
                result.append({"gate": text, "size": g["size"], "axes": g["axes"], "value": value, "holds": held})
    return result


__all__ = ["seed_stats", "aggregate", "round_metrics", "t_interval", "contrasts", "gates"]
