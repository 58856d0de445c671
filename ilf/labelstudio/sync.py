"""Push samples and outputs to Label Studio as tasks; pull annotations back as records.

Push is idempotent: each task carries an ``ilf_key`` (the sample id, plus the systems for a
pairwise task), and keys already in the project are not imported again. Pull is incremental:
records already in the output file are kept as they are and only annotations not yet pulled are
added, so a second pull after more annotation work appends exactly the new work.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ilf.evaluation import mean_and_sem
from ilf.labelstudio.client import LabelStudio, LabelStudioError, batched
from ilf.records import Comparison, Feedback, Output, Sample, format_inputs, read_records, write_records

log = logging.getLogger(__name__)

RECORD_TYPES = {"feedback": Feedback, "ideal": Output, "pairwise": Comparison, "ranking": Comparison, "code_feedback": Feedback}


# ----- tasks -------------------------------------------------------------------------------------


def _outputs_by_sample(samples: list[Sample], outputs: list[Output] | None) -> dict[str, dict[str, str]]:
    """{sample_id: {system: text}}; without an outputs file, each sample's initial output."""
    table: dict[str, dict[str, str]] = defaultdict(dict)
    if outputs is None:
        for sample in samples:
            if sample.initial_output:
                table[sample.id]["initial"] = sample.initial_output
    else:
        for output in outputs:
            table[output.sample_id][output.system] = output.text
    return table


def build_tasks(
    template: str,
    samples: list[Sample],
    outputs: list[Output] | None = None,
    systems: list[str] | None = None,
    seed: int = 0,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks for ``template``; systems and sample ids ride along in the task data.

    With ``model_version``, each task of the ``ideal`` and ``feedback`` templates carries the
    output as a prediction of that model: in ``ideal`` it fills the editor, so the annotator edits
    the model's text instead of retyping it; in ``feedback`` it records which policy wrote what
    the annotator reads (a column and filter in the Data Manager)."""
    if template == "code_feedback":  # a program highlighted, with its test results from the sandbox
        from ilf.labelstudio.code import code_feedback_tasks

        return code_feedback_tasks(samples, outputs, systems, model_version)
    by_sample = _outputs_by_sample(samples, outputs)
    tasks = []
    for sample in samples:
        base = {"sample_id": sample.id, "input_text": format_inputs(sample.inputs)}
        available = by_sample.get(sample.id, {})
        chosen = [s for s in (systems or sorted(available)) if s in available]
        if template == "ideal":
            task: dict[str, Any] = {"data": {"ilf_key": sample.id, **base}}
            if chosen:
                task["data"].update(output=available[chosen[0]], system=chosen[0])
                if model_version:
                    task["predictions"] = [_prediction(model_version, "ideal", "input", available[chosen[0]])]
            tasks.append(task)
        elif template == "feedback":
            for system in chosen:
                key = sample.id if len(chosen) == 1 and not systems else f"{sample.id}::{system}"
                task = {"data": {"ilf_key": key, **base, "output": available[system], "system": system}}
                if model_version:
                    task["predictions"] = [{"model_version": model_version, "result": []}]
                tasks.append(task)
        elif template == "pairwise":
            if len(chosen) < 2:
                continue
            a, b = chosen[:2]
            if _coin(seed, sample.id):  # which side a system shows on must not be a tell
                a, b = b, a
            tasks.append(
                {
                    "data": {
                        "ilf_key": f"{sample.id}::{a}::{b}",
                        **base,
                        "output_a": available[a],
                        "output_b": available[b],
                        "system_a": a,
                        "system_b": b,
                    }
                }
            )
        elif template == "ranking":
            if len(chosen) < 2:
                continue
            items: dict[str, list[str]] = {}
            for system in chosen:  # identical outputs are shown once and tie
                items.setdefault(available[system], []).append(system)
            texts = list(items)
            random.Random(f"{seed}:{sample.id}").shuffle(texts)
            candidates = [{"id": f"c{i}", "title": f"Output {i + 1}", "body": text} for i, text in enumerate(texts)]
            tasks.append(
                {
                    "data": {
                        "ilf_key": sample.id,
                        **base,
                        "candidates": candidates,
                        "systems": {f"c{i}": items[text] for i, text in enumerate(texts)},
                    }
                }
            )
        else:
            raise ValueError(f"unknown template {template!r}")
    return tasks


def _prediction(model_version: str, from_name: str, to_name: str, text: str) -> dict[str, Any]:
    return {
        "model_version": model_version,
        "result": [{"from_name": from_name, "to_name": to_name, "type": "textarea", "value": {"text": [text]}}],
    }


def _coin(seed: int, key: str) -> bool:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()[0] % 2 == 1


@dataclass
class PushResult:
    project_id: int
    created_project: bool
    imported: int
    already_present: int


def push(client: LabelStudio, title: str, template: str, tasks: list[dict[str, Any]], batch_size: int = 1000) -> PushResult:
    project, created = client.get_or_create_project(title, template)
    present = set() if created else {t["data"].get("ilf_key") for t in client.export_tasks(project.id)}
    new = [t for t in tasks if t["data"]["ilf_key"] not in present]
    for batch in batched(new, batch_size):
        client.import_tasks(project.id, batch)
    return PushResult(project_id=project.id, created_project=created, imported=len(new), already_present=len(tasks) - len(new))


# ----- annotations -> records --------------------------------------------------------------------


@dataclass
class PullCounts:
    tasks: int = 0
    annotations: int = 0
    cancelled: int = 0
    empty: int = 0
    new: int = 0
    kept: int = 0


def _results(annotation: dict[str, Any], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [r for r in annotation.get("result", []) if r.get("type") == kind and (name is None or r.get("from_name") == name)]


def _annotator(annotation: dict[str, Any], emails: dict[int, str]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return who.get("email") or str(who.get("id"))
    if isinstance(who, int):
        return emails.get(who, str(who))
    return "unknown"


def _provenance(task: dict[str, Any], annotation: dict[str, Any], project: str) -> dict[str, Any]:
    return {
        "ls_project": project,
        "ls_task_id": task.get("id"),
        "ls_annotation_id": annotation.get("id"),
        "annotated_at": annotation.get("updated_at") or annotation.get("created_at"),
    }


def records_from_export(
    template: str, tasks: list[dict[str, Any]], project: str, emails: dict[int, str] | None = None
) -> tuple[list[Any], PullCounts]:
    """Convert exported tasks to records; cancelled (skipped) and empty annotations are counted, not kept."""
    emails = emails or {}
    counts = PullCounts(tasks=len(tasks))
    records: list[Any] = []
    for task in tasks:
        data = task.get("data", {})
        for annotation in task.get("annotations", []):
            counts.annotations += 1
            if annotation.get("was_cancelled"):
                counts.cancelled += 1
                continue
            who = _annotator(annotation, emails)
            source = f"labelstudio:{project}"
            extra = _provenance(task, annotation, project)
            lead = annotation.get("lead_time")
            if template in ("feedback", "ideal", "code_feedback"):
                name = "ideal" if template == "ideal" else "feedback"
                texts = [t for r in _results(annotation, "textarea", name) for t in r.get("value", {}).get("text", [])]
                text = "\n".join(t.strip() for t in texts if t and t.strip())
                if not text:
                    counts.empty += 1
                    continue
                if template == "ideal":
                    records.append(Output(sample_id=data["sample_id"], text=text, system="human_ideal", extra={"annotator": who, **extra}))
                    continue
                ratings = [r["value"]["rating"] for r in _results(annotation, "rating", "rating")]
                classes = [c for r in _results(annotation, "choices", "feedback_class") for c in r["value"].get("choices", [])]
                records.append(
                    Feedback(
                        sample_id=data["sample_id"],
                        text=text,
                        output=data.get("output"),
                        annotator=who,
                        source=source,
                        rating=float(ratings[0]) if ratings else None,
                        feedback_class=classes[0] if classes else None,
                        lead_time=float(lead) if isinstance(lead, (int, float)) else None,
                        extra={"system": data.get("system"), **extra},
                    )
                )
            elif template == "pairwise":
                picks = [r["value"].get("selected") for r in _results(annotation, "pairwise")]
                if not picks or picks[0] not in ("left", "right"):
                    counts.empty += 1
                    continue
                records.append(
                    Comparison(
                        sample_id=data["sample_id"],
                        a=data["output_a"],
                        b=data["output_b"],
                        preferred="a" if picks[0] == "left" else "b",
                        annotator=who,
                        source=source,
                        a_system=data.get("system_a"),
                        b_system=data.get("system_b"),
                        extra=extra,
                    )
                )
            elif template == "ranking":
                order = _ranked_items(annotation, data)
                if order is None:
                    counts.empty += 1
                    continue
                records.extend(_ranking_pairs(order, data, who, source, extra))
            else:
                raise ValueError(f"unknown template {template!r}")
    return records, counts


def _ranked_items(annotation: dict[str, Any], data: dict[str, Any]) -> list[str] | None:
    results = _results(annotation, "ranker")
    if not results:
        return None
    ranker = results[0].get("value", {}).get("ranker", {})
    order = [item for bucket in ranker.values() for item in bucket]
    known = [c["id"] for c in data.get("candidates", [])]
    if sorted(order) != sorted(known):
        return None  # a partial ranking says nothing about the items left out
    return order


def _ranking_pairs(order: list[str], data: dict[str, Any], who: str, source: str, extra: dict[str, Any]) -> list[Comparison]:
    """Expand one ranking into its pairs: every higher item beats every lower one; systems that
    share an item (identical outputs) tie."""
    texts = {c["id"]: c["body"] for c in data["candidates"]}
    systems = data.get("systems", {})
    pairs = []
    flat = [(item, system) for item in order for system in systems.get(item, [item])]
    for i, (item_a, system_a) in enumerate(flat):
        for item_b, system_b in flat[i + 1 :]:
            pairs.append(
                Comparison(
                    sample_id=data["sample_id"],
                    a=texts[item_a],
                    b=texts[item_b],
                    preferred="tie" if item_a == item_b else "a",
                    annotator=who,
                    source=source,
                    a_system=system_a,
                    b_system=system_b,
                    extra={**extra, "pair": f"{system_a}>{system_b}"},
                )
            )
    return pairs


def _record_key(record: Any) -> tuple[Any, ...]:
    return (record.extra.get("ls_project"), record.extra.get("ls_annotation_id"), record.extra.get("pair"))


def merge_into(path: Path, record_type: type, fresh: list[Any]) -> tuple[list[Any], int, int]:
    """Existing records of ``path`` plus those of ``fresh`` not already there; (all, new, kept)."""
    existing = read_records(path, record_type) if path.exists() else []
    keys = {_record_key(r) for r in existing}
    new = [r for r in fresh if _record_key(r) not in keys]
    return existing + new, len(new), len(existing)


@dataclass
class PullResult:
    records: list[Any]
    counts: PullCounts
    template: str
    tasks: list[dict[str, Any]]


def pull(client: LabelStudio, title: str, out: str | Path, template: str | None = None) -> PullResult:
    """Export the project, convert, and merge into ``out`` (written atomically)."""
    project = client.find_project(title)
    if project is None:
        raise LabelStudioError(f"{client.url}: no project titled {title!r}")
    template = template or client.project_template(project)
    if template is None:
        raise LabelStudioError(f"{client.url}: project {title!r} was not created by ilf; pass --template")
    tasks = client.export_tasks(project.id)
    fresh, counts = records_from_export(template, tasks, title, client.user_emails())
    out = Path(out)
    merged, counts.new, counts.kept = merge_into(out, RECORD_TYPES[template], fresh)
    if counts.new or not out.exists():  # an unchanged file keeps its mtime, so runs see nothing new
        write_records(out, merged)
    return PullResult(records=merged, counts=counts, template=template, tasks=tasks)


# ----- human evaluation --------------------------------------------------------------------------


def ranking_win_rates(tasks: list[dict[str, Any]], reference: str | None = None) -> dict[str, dict[str, float]]:
    """Per-system win rate from ranking annotations: against ``reference`` when given, else against
    every other system of the task; a tie counts one half. Standard errors over annotations."""
    per_system: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        data = task.get("data", {})
        systems = data.get("systems", {})
        for annotation in task.get("annotations", []):
            if annotation.get("was_cancelled"):
                continue
            order = _ranked_items(annotation, data)
            if order is None:
                continue
            position = {system: rank for rank, item in enumerate(order) for system in systems.get(item, [item])}
            for system, rank in position.items():
                opponents = [reference] if reference else [s for s in position if s != system]
                opponents = [o for o in opponents if o in position and o != system]
                if not opponents:
                    continue
                wins = [1.0 if rank < position[o] else 0.5 if rank == position[o] else 0.0 for o in opponents]
                per_system[system].append(sum(wins) / len(wins))
    table = {}
    for system, values in sorted(per_system.items()):
        mean, sem = mean_and_sem(values)
        table[system] = {"win_rate": mean, "win_rate_sem": sem, "n": len(values)}
    return table
