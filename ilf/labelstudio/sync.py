"""Push samples and outputs to Label Studio as tasks; pull annotations back as records.

Push is idempotent: each task carries an ``ilf_key`` (the sample id, plus the systems for a
pairwise task), and keys already in the project are not imported again. Pull is incremental:
records already in the output file are kept as they are and only annotations not yet pulled are
added, so a second pull after more annotation work appends exactly the new work.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import logging
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.evaluation import mean_and_sem
from ilf.labelstudio.client import LabelStudio, LabelStudioError, batched
from ilf.records import (
    Candidate,
    Comparison,
    Feedback,
    Output,
    Refinements,
    Sample,
    Selection,
    format_inputs,
    read_records,
    write_records,
)

if TYPE_CHECKING:
    from ilf.execution.sandbox import Sandbox

log = logging.getLogger(__name__)

RECORD_TYPES = {
    "feedback": Feedback,
    "ideal": Output,
    "pairwise": Comparison,
    "ranking": Comparison,
    "select": Selection,
    "code_feedback": Feedback,
}
NONE_OF_THEM = "None of them"


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
    feedback: list[Feedback] | None = None,
    refinements: list[Refinements] | None = None,
    sandbox: Sandbox | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks for ``template``; systems and sample ids ride along in the task data.

    With ``model_version``, each task of the ``ideal`` and ``feedback`` templates carries the
    output as a prediction of that model: in ``ideal`` it fills the editor, so the annotator edits
    the model's text instead of retyping it; in ``feedback`` it records which policy wrote what
    the annotator reads (a column and filter in the Data Manager).

    ``select`` takes ``refinements`` (and ``feedback`` for records that lack their feedback text):
    one task per refinements record, its candidates side by side.

    ``code_feedback`` runs each program without a recorded verdict in ``sandbox`` (the config's
    task's; the default sandbox when None)."""
    if template == "select":
        return select_tasks(samples, refinements or [], feedback)
    if template == "code_feedback":  # a program highlighted, with its test results from the sandbox
        from ilf.labelstudio.code import code_feedback_tasks

        return code_feedback_tasks(samples, outputs, systems, model_version, sandbox)
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


def candidate_label(index: int) -> str:
    return f"Candidate {index + 1}"


def select_tasks(samples: list[Sample], refinements: list[Refinements], feedback: list[Feedback] | None = None) -> list[dict[str, Any]]:
    """One ``select`` task per refinements record: the input, the critiqued output, the feedback,
    and the candidates side by side, with one choice per candidate and one for none of them. A
    sample with several records (several critiques) gets a task per record."""
    by_id = {s.id: s for s in samples}
    feedback_by_sample: dict[str, list[Feedback]] = defaultdict(list)
    for item in feedback or []:
        feedback_by_sample[item.sample_id].append(item)
    per_sample: dict[str, int] = defaultdict(int)
    for record in refinements:
        per_sample[record.sample_id] += 1
    seen: dict[str, int] = defaultdict(int)
    tasks = []
    for number, record in enumerate(refinements, start=1):
        sample = by_id.get(record.sample_id)
        if sample is None:
            raise ValueError(f"refinements record {number}: sample_id {record.sample_id!r} is not among the samples")
        nth = seen[record.sample_id]
        seen[record.sample_id] += 1
        critiques = feedback_by_sample.get(record.sample_id, [])
        critique = record.feedback or (critiques[nth].text if nth < len(critiques) else "")
        output = record.output or (critiques[nth].output if nth < len(critiques) else None) or sample.initial_output or ""
        texts = [c.text for c in record.candidates]
        columns = "".join(
            f'<div style="flex:1;min-width:14em;border:1px solid #ccc;border-radius:4px;padding:6px">'
            f'<b>{candidate_label(i)}</b><p style="white-space:pre-wrap">{html.escape(text)}</p></div>'
            for i, text in enumerate(texts)
        )
        tasks.append(
            {
                "data": {
                    "ilf_key": record.sample_id if per_sample[record.sample_id] == 1 else f"{record.sample_id}::{nth}",
                    "sample_id": record.sample_id,
                    "input_text": format_inputs(sample.inputs),
                    "output": output,
                    "feedback": critique,
                    "candidates": texts,
                    "candidates_html": f'<div style="display:flex;gap:8px;flex-wrap:wrap">{columns}</div>',
                    "choices": [{"value": candidate_label(i)} for i in range(len(texts))] + [{"value": NONE_OF_THEM}],
                }
            }
        )
    return tasks


def _prediction(model_version: str, from_name: str, to_name: str, text: str) -> dict[str, Any]:
    return {
        "model_version": model_version,
        "result": [{"from_name": from_name, "to_name": to_name, "type": "textarea", "value": {"text": [text]}}],
    }


def _differs(there: dict[str, Any], here: dict[str, Any]) -> bool:
    """Whether a task's data on the server is not the data pushed now (fields the server adds are ignored)."""
    return any(there.get(field) != value for field, value in here.items())


def _coin(seed: int, key: str) -> bool:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()[0] % 2 == 1


@dataclass
class PushResult:
    project_id: int
    created_project: bool
    imported: int
    already_present: int


MAX_PROJECT_TASKS = 100_000


def push(
    client: LabelStudio,
    title: str,
    template: str,
    tasks: list[dict[str, Any]],
    batch_size: int = 1000,
    max_project_tasks: int | None = MAX_PROJECT_TASKS,
) -> PushResult:
    """Import the tasks not yet in the project, ``batch_size`` per request. Before reading an
    existing project's tasks (to skip those already there), its task count is checked: a project
    holding more than ``max_project_tasks`` tasks fails at once with a clear message instead of
    an export that runs into a timeout (None: no limit)."""
    project, created = client.get_or_create_project(title, template)
    if not created and max_project_tasks is not None:
        count = int(getattr(project, "task_number", None) or 0)
        if count > max_project_tasks:
            raise LabelStudioError(
                f"{client.url}: project {title!r} (id {project.id}) already holds {count:,} tasks, more than the "
                f"{max_project_tasks:,} ilf pushes into; use a new project per round or batch of work (ilf loop makes "
                f"one per round: labelstudio.project with {{round}}), or raise the limit"
            )
    present = {} if created else {t["data"].get("ilf_key"): t["data"] for t in client.export_tasks(project.id)}
    # A key already there must show what it shows now: a project left by another run (of the same
    # name, on other outputs) would otherwise have its annotations pulled as if they were of these.
    stale = [t["data"]["ilf_key"] for t in tasks if t["data"]["ilf_key"] in present and _differs(present[t["data"]["ilf_key"]], t["data"])]
    if stale:
        raise LabelStudioError(
            f"{client.url}: project {title!r} already has tasks for {len(stale)} of these keys with other content "
            f"(first: {stale[0]!r}), so its annotations are not of these outputs: push to a new project, or delete that one"
        )
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
    none: int = 0  # select: "none of them"


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
                        extra={**extra, "lead_time": lead},  # what it cost the person (ilf.costs prices by it)
                    )
                )
            elif template == "select":
                answer = select_answer(annotation, data)
                if answer is None or answer == "none":
                    counts.empty += answer is None
                    counts.none += answer == "none"
                    continue
                index, text, edited = answer
                records.append(
                    Selection(
                        sample_id=data["sample_id"],
                        selector="human",
                        index=index,
                        text=text,
                        candidates=[Candidate(text=t) for t in data.get("candidates", [])],
                        feedback=data.get("feedback"),
                        extra={"annotator": who, "edited": edited, "lead_time": lead, **extra},
                    )
                )
            elif template == "ranking":
                order = _ranked_items(annotation, data)
                if order is None:
                    counts.empty += 1
                    continue
                # one ranking, priced once by its lead time (ilf.costs groups its pairs by ``ranking``)
                ranking = {"ranking": f"{project}:{annotation.get('id')}", "ranked": len(order), "lead_time": lead}
                records.extend(_ranking_pairs(order, data, who, source, {**extra, **ranking}))
            else:
                raise ValueError(f"unknown template {template!r}")
    return records, counts


def select_answer(annotation: dict[str, Any], data: dict[str, Any]) -> tuple[int, str, bool] | str | None:
    """A ``select`` annotation as (index, text, edited), ``"none"`` for none of them, or None when
    it says nothing. An edited text is the selected text; its index is the picked candidate, or
    without a pick the candidate it is closest to."""
    candidates = data.get("candidates", [])
    picks = [c for r in _results(annotation, "choices", "pick") for c in r.get("value", {}).get("choices", [])]
    edits = [t for r in _results(annotation, "textarea", "edited") for t in r.get("value", {}).get("text", [])]
    edited = "\n".join(t.strip() for t in edits if t and t.strip())
    index = None
    if picks:
        if picks[0] == NONE_OF_THEM and not edited:
            return "none"
        match = re.fullmatch(r"Candidate (\d+)", picks[0])
        if match and 1 <= int(match.group(1)) <= len(candidates):
            index = int(match.group(1)) - 1
    if edited:
        if index is None and candidates:
            index = max(range(len(candidates)), key=lambda i: difflib.SequenceMatcher(None, candidates[i], edited).ratio())
        if index is None:
            return None
        return index, edited, edited != candidates[index]
    if index is None:
        return None
    return index, candidates[index], False


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
    emails: dict[int, str]  # who annotated: user id -> e-mail


def pull(client: LabelStudio, title: str, out: str | Path, template: str | None = None) -> PullResult:
    """Export the project, convert, and merge into ``out`` (written atomically)."""
    project = client.find_project(title)
    if project is None:
        raise LabelStudioError(f"{client.url}: no project titled {title!r}")
    template = template or client.project_template(project)
    if template is None:
        raise LabelStudioError(f"{client.url}: project {title!r} was not created by ilf; pass --template")
    tasks = client.export_tasks(project.id)
    emails = client.user_emails()
    fresh, counts = records_from_export(template, tasks, title, emails)
    out = Path(out)
    merged, counts.new, counts.kept = merge_into(out, RECORD_TYPES[template], fresh)
    if counts.new or not out.exists():  # an unchanged file keeps its mtime, so runs see nothing new
        write_records(out, merged)
    return PullResult(records=merged, counts=counts, template=template, tasks=tasks, emails=emails)


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
