"""What the people of a round did: a summary page per round of ``ilf loop``.

``round-k/labelstudio_summary.md`` (and ``.json``) gives the round's project, its tasks, the
annotations each annotator submitted and skipped, their median lead time, agreement where two
people annotated the same task, and the round's metrics. Agreement depends on the template: for
critiques (``feedback``) whether two texts name the same thing is hard to say, so the page counts
the tasks two or more people annotated; for ``select`` it gives the share of pairs of annotations
of one task that picked the same candidate (or both "none of them") and Cohen's kappa over those
pairs.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

from ilf.files import atomic_write_json, atomic_write_text
from ilf.labelstudio.sync import _annotator, select_answer
from ilf.results import RunResult

SUMMARY_MD = "labelstudio_summary.md"
SUMMARY_JSON = "labelstudio_summary.json"


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def cohens_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired labels (first rater, second rater); None without pairs, 1.0 when
    both raters only ever use one and the same label."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def summarize(tasks: list[dict[str, Any]], template: str, emails: dict[int, str] | None = None) -> dict[str, Any]:
    """Counts per annotator, skips, lead times and agreement of a project's exported tasks."""
    emails = emails or {}
    per_annotator: dict[str, dict[str, Any]] = defaultdict(lambda: {"annotated": 0, "skipped": 0, "lead_times": []})
    multi = 0
    pairs: list[tuple[str, str]] = []
    lead_times: list[float] = []
    for task in tasks:
        submitted = []
        for annotation in sorted(task.get("annotations", []), key=lambda a: a.get("id") or 0):
            who = _annotator(annotation, emails)
            row = per_annotator[who]
            if annotation.get("was_cancelled"):
                row["skipped"] += 1
                continue
            row["annotated"] += 1
            lead = annotation.get("lead_time")
            if isinstance(lead, (int, float)):
                row["lead_times"].append(float(lead))
                lead_times.append(float(lead))
            submitted.append((who, annotation))
        people = {who for who, _ in submitted}
        if len(people) >= 2:
            multi += 1
            if template == "select":
                labels = {}
                for who, annotation in submitted:  # one label per person: their first answer
                    answer = select_answer(annotation, task.get("data", {}))
                    if answer is not None and who not in labels:
                        labels[who] = "none" if answer == "none" else f"candidate {answer[0] + 1}"
                pairs.extend((labels[a], labels[b]) for a, b in combinations(labels, 2))
    annotators = {
        who: {"annotated": row["annotated"], "skipped": row["skipped"], "median_lead_time": _median(row["lead_times"])}
        for who, row in sorted(per_annotator.items())
    }
    agreement: dict[str, Any] = {"tasks_with_two_or_more_annotators": multi}
    if template == "select":
        agreement.update(
            pairs=len(pairs),
            identical_picks=(sum(a == b for a, b in pairs) / len(pairs)) if pairs else None,
            cohens_kappa=cohens_kappa(pairs),
        )
    return {
        "template": template,
        "tasks": len(tasks),
        "tasks_annotated": sum(1 for t in tasks if any(not a.get("was_cancelled") for a in t.get("annotations", []))),
        "annotations": sum(row["annotated"] for row in annotators.values()),
        "skipped": sum(row["skipped"] for row in annotators.values()),
        "median_lead_time": _median(lead_times),
        "annotators": annotators,
        "agreement": agreement,
    }


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def render(summary: dict[str, Any]) -> str:
    title = summary.get("project") or "Label Studio"
    heading = f"# {title}" + (f" (round {summary['round']})" if summary.get("round") else "")
    lines = [
        heading,
        "",
        f"Template `{summary['template']}`: {summary['tasks']} tasks, {summary['tasks_annotated']} annotated; "
        f"{summary['annotations']} annotations submitted, {summary['skipped']} skipped; "
        f"median lead time {_number(summary['median_lead_time'], 1)} s.",
        "",
        "| annotator | annotated | skipped | median lead time (s) |",
        "|---|---|---|---|",
    ]
    for who, row in summary["annotators"].items():
        lines.append(f"| {who} | {row['annotated']} | {row['skipped']} | {_number(row['median_lead_time'], 1)} |")
    agreement = summary["agreement"]
    lines += ["", "## Agreement", "", f"Tasks annotated by two or more people: {agreement['tasks_with_two_or_more_annotators']}."]
    if summary["template"] == "select":
        lines.append(
            f"Pairs of answers to one task: {agreement['pairs']}; identical picks: {_number(agreement['identical_picks'])}; "
            f"Cohen's kappa: {_number(agreement['cohens_kappa'])}."
        )
    metrics = summary.get("metrics")
    if metrics:
        lines += ["", f"## Metrics ({summary.get('system', 'policy')})", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_number(value)} |" for name, value in metrics.items()]
    return "\n".join(lines) + "\n"


def round_metrics(metrics_path: Path) -> tuple[str | None, dict[str, float]]:
    """The primary system's numeric metrics of a round's metrics.json, standard errors left out."""
    if not metrics_path.exists():
        return None, {}
    result = RunResult.read(metrics_path)
    return result.primary, result.primary_numbers()


def write_summary(
    directory: Path,
    tasks: list[dict[str, Any]],
    template: str,
    emails: dict[int, str] | None = None,
    project: str | None = None,
    round_number: int | None = None,
    metrics_path: Path | None = None,
) -> dict[str, Any]:
    """Write ``labelstudio_summary.md`` and ``.json`` into ``directory``; returns the summary."""
    summary = {"project": project, "round": round_number, **summarize(tasks, template, emails)}
    if metrics_path is not None:
        summary["system"], summary["metrics"] = round_metrics(metrics_path)
    atomic_write_json(directory / SUMMARY_JSON, summary)
    atomic_write_text(directory / SUMMARY_MD, render(summary))
    return summary
