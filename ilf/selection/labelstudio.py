"""People's picks from Label Studio (the human-selection path of the ILF paper), automatic picks
for the rest.

The refinements of a round go to a project of the ``select`` template (``ilf labelstudio`` or
``build_tasks("select", ...)`` and ``push``); annotators pick the candidate that does what the
feedback asked, edit one, or answer "none of them". This selector reads that project
(``selection_options.labelstudio.project``) when it scores: a sample someone picked for gets their pick
(the most common pick when several people answered, ties to the earliest; an edited text becomes
the selected text); a sample answered "none of them" gets no selection and is left out of
fine-tuning; every other sample is a tie the select step breaks by ``selection.also_score[0]``
(else its first candidate). Each selection says in ``extra.picked_by`` whether a person or the
automatic selector chose it, and the select stage counts both.

In a run, the picks are fetched once, before any stage (``prepare``), into the run directory, and
the select stage scores that snapshot and records its content as
what it read. A pick counts only for the candidate the person saw: where the sample's
candidate at the picked position is no longer that text (the refinements were written again), the
automatic selector picks instead, and the stage counts it (``human_picks_of_changed_candidates``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf import reads
from ilf.config import RunConfig, option
from ilf.labelstudio.client import LabelStudio, LabelStudioError, resolve_connection
from ilf.labelstudio.sync import records_from_export, select_answer
from ilf.records import Refinements, Selection
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector

if TYPE_CHECKING:
    from ilf.costs import Asked
    from ilf.view import RunView

log = logging.getLogger(__name__)

PICKS_FILE = "labelstudio_picks.json"
PROJECT_KEY = "selection_options.labelstudio.project"
HUMAN = 1.0  # the person's pick; the other candidates 0
REJECTED = -1.0  # below min_score: "none of them"


def human_picks(tasks: list[dict[str, Any]], project: str, emails: dict[int, str] | None = None) -> dict[str, Selection | None]:
    """{sample_id: the people's selection, or None when they answered "none of them"} from a
    ``select`` project's export. Several answers for a sample: the most common candidate wins (ties
    to the earliest answer); "none" wins only if it is the most common answer."""
    selections, _ = records_from_export("select", tasks, project, emails)
    by_annotation = {s.extra.get("ls_annotation_id"): s for s in selections}
    answers: dict[str, list[tuple[int, Any]]] = defaultdict(list)  # sample -> [(annotation id, index or "none")]
    for task in tasks:
        for annotation in task.get("annotations", []):
            if annotation.get("was_cancelled"):
                continue
            answer = select_answer(annotation, task.get("data", {}))
            if answer is None:
                continue
            answers[task["data"]["sample_id"]].append((annotation.get("id") or 0, "none" if answer == "none" else answer[0]))
    picks: dict[str, Selection | None] = {}
    for sample_id, given in answers.items():
        given.sort(key=lambda pair: pair[0])
        counts = Counter(choice for _, choice in given)
        best = max(counts.values())
        winner = next(choice for _, choice in given if counts[choice] == best)
        if winner == "none":
            picks[sample_id] = None
            continue
        first = next(aid for aid, choice in given if choice == winner)
        chosen = by_annotation[first]
        shown = chosen.candidates[chosen.index].text if chosen.index < len(chosen.candidates) else None
        chosen.extra["shown"] = shown  # the candidate the person saw: a pick holds only while it is still that text
        picks[sample_id] = chosen
    return picks


def _still_shown(pick: Selection | None, candidates: list[str]) -> bool:
    """Whether a pick (None: no pick) still names the candidate the person saw; a pick recorded
    without the text shown (an older snapshot) is taken as it is."""
    if pick is None:
        return True
    if pick.index >= len(candidates):
        return False
    shown = pick.extra.get("shown")
    return shown is None or candidates[pick.index] == shown


def read_snapshot(path: Path) -> dict[str, Selection | None]:
    """The picks ``snapshot_picks`` wrote, as ``human_picks`` gives them."""
    picks: dict[str, Selection | None] = {}
    for sample_id, pick in json.loads(path.read_text())["picks"].items():
        if pick is None:
            picks[sample_id] = None
            continue
        extra = {key: pick.get(key) for key in ("shown", "annotator", "edited", "lead_time")}
        extra["ls_annotation_id"] = pick.get("annotation")
        picks[sample_id] = Selection(sample_id=sample_id, selector="human", index=pick["index"], text=pick["text"], extra=extra)
    return picks


def snapshot_picks(project: str, path: Path) -> bool:
    """Write the project's picks to ``path`` when they changed (the select stage reads
    the file by content, so new picks rerun the stage and nothing else does); True when written."""
    if not project:
        raise LabelStudioError(f"selection.method labelstudio needs {PROJECT_KEY} (the title of the select project)")
    client = LabelStudio(resolve_connection())
    found = client.find_project(project)
    if found is None:
        raise LabelStudioError(f"{client.url}: no project titled {project!r} ({PROJECT_KEY})")
    picks = human_picks(client.export_tasks(found.id), project, client.user_emails())
    snapshot = {
        sample_id: None
        if pick is None
        else {
            "index": pick.index,
            "text": pick.text,
            "shown": pick.extra.get("shown"),
            "annotator": pick.extra.get("annotator"),
            "edited": bool(pick.extra.get("edited")),
            "lead_time": pick.extra.get("lead_time"),
            "annotation": pick.extra.get("ls_annotation_id"),
        }
        for sample_id, pick in sorted(picks.items())
    }
    text = json.dumps({"project": project, "picks": snapshot}, indent=1, sort_keys=True)
    if path.exists() and path.read_text() == text:
        return False
    from ilf.files import atomic_write_text

    atomic_write_text(path, text)
    log.info("%d picks by people in %r (%d 'none of them')", len(snapshot), project, sum(v is None for v in snapshot.values()))
    return True


@dataclass
class LabelStudioSelectOptions:
    project: str | None = option(
        None,
        "Title of the Label Studio project of `select` tasks whose picks are used (server from labelstudio.url, "
        "LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, else the local one); required.",
    )


@SELECTORS.register(
    "labelstudio",
    help="People's picks from the Label Studio project selection_options.labelstudio.project (select template); samples nobody "
    "picked are ties that selection.also_score[0] breaks (else the first candidate); 'none of them' leaves a sample out.",
)
class LabelStudioSelector(Selector):
    cost_unit = "picks"
    min_score = 0.0
    Options = LabelStudioSelectOptions

    @classmethod
    def seconds_per_sample(cls, config: Any) -> float:
        from ilf.costs import price

        return price(config.cost, "picks")  # one pick per sample, whatever the number of candidates

    @classmethod
    def feedback_asked(cls, refinements: list[Refinements], selections: list[Selection], cost: Any) -> list[Asked]:
        """A person's pick per sample they answered (an edit where they rewrote it), priced by its lead time; automatic picks cost nothing."""
        from ilf.costs import asked

        return [
            asked(s.sample_id, "edits" if s.extra.get("edited") else "picks", cost, s)
            for s in selections
            if s.extra.get("picked_by") == "human"
        ]

    moved = {"selection.labelstudio_project": "{options}.project"}

    @classmethod
    def prepare(cls, run: RunView) -> None:
        snapshot_picks(cls.options(run.config).project or "", run.paths.root / PICKS_FILE)

    @classmethod
    def summary(cls, selections: list[Selection]) -> dict[str, Any]:
        picked_by = [s.extra.get("picked_by") for s in selections]
        stats = {
            "picked_by_human": picked_by.count("human"),
            "picked_automatically": picked_by.count("automatic"),
            "human_edited": sum(1 for s in selections if s.extra.get("edited")),
            "human_picks_of_changed_candidates": sum(1 for s in selections if s.extra.get("pick_of_changed_candidate")),
        }
        log.info(
            "select: %d picks by people (%d edited), %d automatic",
            stats["picked_by_human"],
            stats["human_edited"],
            stats["picked_automatically"],
        )
        return stats

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> LabelStudioSelector:
        project = cls.options(config).project
        if not project:
            raise LabelStudioError(f"selection.method labelstudio needs {PROJECT_KEY} (the title of the select project)")
        others = [name for name in config.selection.also_score if name != cls.name]
        return cls(
            LabelStudio(resolve_connection(config.labelstudio.url, config.labelstudio.data_dir)),
            project,
            others[0] if others else "first candidate",
        )

    def __init__(self, client: LabelStudio, project: str, fallback_name: str = "first candidate") -> None:
        self.client = client
        self.project = project
        self.fallback_name = fallback_name  # who decides where nobody picked: the select step's tie-break
        self.picks: dict[str, Selection | None] = {}
        self.rows: list[str] = []
        self.changed: set[str] = set()  # samples whose picked candidate is no longer the text the person saw
        self.snapshot: Path | None = None  # a run's picks, fetched before its stages (prepare)

    def use_run(self, run: RunView) -> None:
        self.snapshot = run.paths.root / PICKS_FILE

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        """The person's pick scores 1, "none of them" scores every candidate below ``min_score``;
        a sample nobody answered scores all its candidates 0, a tie the select step breaks."""
        if self.snapshot is not None and self.snapshot.exists():
            reads.note_file(self.snapshot)  # people's new picks rerun the stage
            self.picks = read_snapshot(self.snapshot)
        else:  # no run (`ilf select`): the project as it is now
            found = self.client.find_project(self.project)
            if found is None:
                raise LabelStudioError(f"{self.client.url}: no project titled {self.project!r} ({PROJECT_KEY})")
            self.picks = human_picks(self.client.export_tasks(found.id), self.project, self.client.user_emails())
        self.rows = [item.sample.id for item in items]
        self.changed = {item.sample.id for item in items if not _still_shown(self.picks.get(item.sample.id), item.candidates)}
        for sample_id in self.changed:
            self.picks.pop(sample_id)
        scores = []
        for item in items:
            pick = self.picks.get(item.sample.id)
            if item.sample.id not in self.picks:
                scores.append([0.0] * len(item.candidates))
            elif pick is None:
                scores.append([REJECTED] * len(item.candidates))
            else:
                scores.append([HUMAN if c == pick.index else 0.0 for c in range(len(item.candidates))])
        human = sum(1 for item in items if self.picks.get(item.sample.id) is not None)
        rejected = sum(1 for item in items if item.sample.id in self.picks and self.picks[item.sample.id] is None)
        log.info(
            "labelstudio: %d of %d samples picked by people in %r, %d answered none of them, %d left to %s "
            "(%d of them picked among candidates that have since changed)",
            human,
            len(items),
            self.project,
            rejected,
            len(items) - human - rejected,
            self.fallback_name,
            len(self.changed),
        )
        return scores

    def finish(self, row: int, selection: Selection) -> Selection:
        sample_id = self.rows[row] if row < len(self.rows) else None
        pick = self.picks.get(sample_id) if sample_id is not None else None
        if pick is None or pick.index != selection.index:
            selection.extra.update(picked_by="automatic", automatic_selector=self.fallback_name)
            if sample_id in self.changed:
                selection.extra["pick_of_changed_candidate"] = True
            return selection
        selection.text = pick.text  # an edited text is what the person chose
        selection.extra.update(
            picked_by="human",
            annotator=pick.extra.get("annotator"),
            edited=bool(pick.extra.get("edited")),
            lead_time=pick.extra.get("lead_time"),  # what the pick cost the person, priced in the method's feedback cost
            ls_project=self.project,
            ls_annotation_id=pick.extra.get("ls_annotation_id"),
        )
        return selection
