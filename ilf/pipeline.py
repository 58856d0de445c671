"""One ILF round as stages over a run directory.

    data -> outputs -> feedback -> refine -> select -> finetune -> evaluate

Each stage writes its outputs atomically, then a marker holding its fingerprint: a hash of the
config sections it reads and of the previous stage's fingerprint. Rerunning skips a stage whose
marker matches and whose outputs exist, so changing ``selection.method`` reruns selection,
fine-tuning and evaluation and nothing before. Generation stages journal each finished batch, so a
run killed half-way resumes without repeating or losing samples. ``--from`` forces a stage and all
after it; ``--until`` stops after a stage (to collect feedback on the outputs, say).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ilf import steps
from ilf.config import RunConfig, dump_config, fingerprint
from ilf.data import load_eval, load_train
from ilf.evaluation import format_table
from ilf.files import DirectoryLock, Journal, atomic_write_json, atomic_write_text
from ilf.records import Feedback, Output, Refinements, Sample, Selection, read_records, write_records
from ilf.tasks import get_task

log = logging.getLogger(__name__)

STAGES = ("data", "outputs", "feedback", "refine", "select", "finetune", "evaluate")


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def samples(self) -> Path:
        return self.root / "samples.jsonl"

    @property
    def eval_samples(self) -> Path:
        return self.root / "eval_samples.jsonl"

    @property
    def dataset_feedback(self) -> Path:
        return self.root / "dataset_feedback.jsonl"

    @property
    def comparisons(self) -> Path:
        return self.root / "comparisons.jsonl"

    @property
    def labelstudio_feedback(self) -> Path:
        return self.root / "labelstudio_feedback.jsonl"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs.jsonl"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback.jsonl"

    @property
    def refinements(self) -> Path:
        return self.root / "refinements.jsonl"

    @property
    def selected(self) -> Path:
        return self.root / "selected.jsonl"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def eval_outputs(self) -> Path:
        return self.root / "eval_outputs.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def state(self) -> Path:
        return self.root / ".ilf"

    def marker(self, stage: str) -> Path:
        return self.state / "stages" / f"{stage}.json"

    def journal(self, stage: str, fp: str, part: str = "") -> Journal:
        return Journal(self.state / "partial" / f"{stage}{part}-{fp}.jsonl")


def _local_files_digest(path: str | None) -> list[Any]:
    """Size and mtime of local input files, so editing the data reruns the stages that read it."""
    if not path:
        return []
    local = Path(path).expanduser()
    files = sorted(local.glob("*")) if local.is_dir() else [local] if local.is_file() else []
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


class Pipeline:
    def __init__(self, config: RunConfig, run_dir: str | Path) -> None:
        self.config = config
        self.paths = RunPaths(Path(run_dir))
        self.task = get_task(config.task)
        self._stage_fns: dict[str, Callable[[str], dict[str, Any]]] = {
            "data": self._data,
            "outputs": self._outputs,
            "feedback": self._feedback,
            "refine": self._refine,
            "select": self._select,
            "finetune": self._finetune,
            "evaluate": self._evaluate,
        }

    # ----- bookkeeping -------------------------------------------------------------------------

    def stage_inputs(self, stage: str) -> list[Any]:
        c = self.config
        if stage == "data":
            return [c.data, _local_files_digest(c.data.path), _local_files_digest(c.data.eval_path)]
        if stage == "outputs":
            return [c.policy, c.task, c.refine.sampling, c.seed]
        if stage == "feedback":
            pulled = str(self.paths.labelstudio_feedback) if c.feedback.source == "labelstudio" else None
            return [c.feedback, _local_files_digest(c.feedback.path), _local_files_digest(pulled)]
        if stage == "refine":
            return [c.refiner_model, c.refine, c.task, c.seed]
        if stage == "select":
            uses_judge = "instruct_rm" in (c.selection.method, *c.selection.also_score)
            return [c.selection, c.refiner_model if uses_judge else None]
        if stage == "finetune":
            return [c.policy, c.finetune, c.task, c.seed]
        if stage == "evaluate":
            return [c.evaluation, c.policy, c.task, c.seed]
        raise KeyError(stage)

    def fingerprints(self) -> dict[str, str]:
        chain: dict[str, str] = {}
        previous = ""
        for stage in STAGES:
            previous = chain[stage] = fingerprint(previous, stage, *self.stage_inputs(stage))
        return chain

    def stage_outputs(self, stage: str) -> list[Path]:
        p = self.paths
        return {
            "data": [p.samples, p.eval_samples, p.dataset_feedback, p.comparisons],
            "outputs": [p.outputs],
            "feedback": [p.feedback],
            "refine": [p.refinements],
            "select": [p.selected],
            "finetune": [p.model / "config.json"],
            "evaluate": [p.eval_outputs, p.metrics],
        }[stage]

    def is_done(self, stage: str, fp: str) -> bool:
        marker = self.paths.marker(stage)
        if not marker.exists():
            return False
        try:
            recorded = json.loads(marker.read_text())["fingerprint"]
        except (ValueError, KeyError):
            return False
        return recorded == fp and all(path.exists() for path in self.stage_outputs(stage))

    def status(self) -> dict[str, str]:
        fps = self.fingerprints()
        return {stage: "done" if self.is_done(stage, fps[stage]) else "pending" for stage in STAGES}

    def _replacing(self, stage: str) -> None:
        """Call just before a stage overwrites its outputs: its marker no longer describes them.

        Later markers may stay: their fingerprints chain on this stage's, so they only match again
        if this stage reproduces the outputs they were computed from. A stage that fails before
        writing (bad input, say) leaves the directory exactly as it was.
        """
        self.paths.marker(stage).unlink(missing_ok=True)

    # ----- running -----------------------------------------------------------------------------

    def run(self, from_stage: str | None = None, until: str | None = None) -> dict[str, Any]:
        for name, value in (("--from", from_stage), ("--until", until)):
            if value is not None and value not in STAGES:
                raise ValueError(f"{name}: unknown stage {value!r} (stages: {', '.join(STAGES)})")
        forced = STAGES.index(from_stage) if from_stage else len(STAGES)
        last = STAGES.index(until) if until else len(STAGES) - 1
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.paths.state / "lock"):
            if self.config.feedback.source == "labelstudio" and last >= STAGES.index("feedback"):
                self._pull_labelstudio_feedback()
            fps = self.fingerprints()
            summaries: dict[str, Any] = {}
            for index, stage in enumerate(STAGES[: last + 1]):
                if index < forced and self.is_done(stage, fps[stage]):
                    log.info("stage %s: up to date, skipped", stage)
                    summaries[stage] = "skipped"
                    continue
                log.info("stage %s: running", stage)
                started = dt.datetime.now(dt.timezone.utc)
                summary = self._stage_fns[stage](fps[stage])
                atomic_write_json(
                    self.paths.marker(stage),
                    {"stage": stage, "fingerprint": fps[stage], "started": started.isoformat(),
                     "finished": dt.datetime.now(dt.timezone.utc).isoformat(), "summary": summary},
                )
                for old in (self.paths.state / "partial").glob(f"{stage}*-*.jsonl"):
                    old.unlink(missing_ok=True)
                # Recorded once a stage has succeeded, so a run that fails on bad input leaves the
                # directory describing the last run that worked.
                atomic_write_text(self.paths.config, dump_config(self.config))
                summaries[stage] = summary
            return summaries

    def _pull_labelstudio_feedback(self) -> None:
        """Bring the project's new annotations into the run; the feedback stage reruns only if
        something new arrived, since its fingerprint covers the pulled file."""
        from ilf.labelstudio.client import LabelStudio, resolve_connection
        from ilf.labelstudio.sync import pull

        fb = self.config.feedback
        if not fb.project:
            raise ValueError("feedback.project: required when feedback.source is 'labelstudio'")
        client = LabelStudio(resolve_connection(fb.url, fb.data_dir))
        result = pull(client, fb.project, self.paths.labelstudio_feedback, template="feedback")
        c = result.counts
        log.info("pulled %d new critiques from %r (%d kept, %d cancelled, %d empty)", c.new, fb.project, c.kept, c.cancelled, c.empty)

    # ----- stages ------------------------------------------------------------------------------

    def _data(self, fp: str) -> dict[str, Any]:
        train = load_train(self.config.data)
        held_out = load_eval(self.config.data)
        if not train.samples:
            raise ValueError(f"data: no samples in split {self.config.data.split!r} of {self.config.data.path}")
        self._replacing("data")
        write_records(self.paths.samples, train.samples)
        write_records(self.paths.eval_samples, held_out.samples)
        write_records(self.paths.dataset_feedback, train.feedback)
        write_records(self.paths.comparisons, train.comparisons)
        return {
            "samples": len(train.samples),
            "eval_samples": len(held_out.samples),
            "dataset_feedback": len(train.feedback),
            "comparisons": len(train.comparisons),
        }

    def _samples(self) -> list[Sample]:
        return read_records(self.paths.samples, Sample)

    def _outputs(self, fp: str) -> dict[str, Any]:
        c = self.config
        outputs, stats = steps.initial_outputs(
            self._samples(), self.task, c.policy, c.refine.sampling, c.seed, self.paths.journal("outputs", fp)
        )
        self._replacing("outputs")
        write_records(self.paths.outputs, outputs)
        return stats

    def _feedback(self, fp: str) -> dict[str, Any]:
        source = self.config.feedback.source
        samples = {s.id for s in self._samples()}
        if source == "dataset":
            feedback = read_records(self.paths.dataset_feedback, Feedback)
            origin: Path = self.paths.dataset_feedback
        elif source == "labelstudio":
            origin = self.paths.labelstudio_feedback
            feedback = read_records(origin, Feedback)
        elif source == "file":
            if not self.config.feedback.path:
                raise ValueError("feedback.path: required when feedback.source is 'file'")
            origin = Path(self.config.feedback.path)
            feedback = read_records(origin, Feedback)
        else:
            raise ValueError(f"feedback.source: unknown source {source!r} (dataset, file or labelstudio)")
        kept = [f for f in feedback if f.sample_id in samples and f.text.strip()]
        if not kept:
            raise ValueError(f"{origin}: no feedback for any of the {len(samples)} samples of this run")
        self._replacing("feedback")
        write_records(self.paths.feedback, kept)
        return {"feedback": len(kept), "ignored": len(feedback) - len(kept), "samples_with_feedback": len({f.sample_id for f in kept})}

    def _refine(self, fp: str) -> dict[str, Any]:
        c = self.config
        records, stats = steps.refine(
            self._samples(),
            read_records(self.paths.outputs, Output),
            read_records(self.paths.feedback, Feedback),
            self.task,
            c.refiner_model,
            c.refine,
            c.seed,
            self.paths.journal("refine", fp),
        )
        self._replacing("refine")
        write_records(self.paths.refinements, records)
        return stats

    def _select(self, fp: str) -> dict[str, Any]:
        selections, stats = steps.select_refinements(
            self._samples(), read_records(self.paths.refinements, Refinements), self.config.selection, self.config.refiner_model,
            self.task,
        )
        self._replacing("select")
        write_records(self.paths.selected, selections)
        return stats

    def _finetune(self, fp: str) -> dict[str, Any]:
        from ilf.train.sft import finetune, training_pairs

        c = self.config
        selections = read_records(self.paths.selected, Selection) if c.finetune.target == "selected" else None
        pairs, counts = training_pairs(self.task, self._samples(), c.finetune.target, selections)
        self._replacing("finetune")
        metrics = finetune(c.policy, pairs, c.finetune, self.paths.model, c.seed)
        return {**counts, **{k: v for k, v in metrics.items() if k != "loss_history"}}

    def _evaluate(self, fp: str) -> dict[str, Any]:
        from ilf.config import ModelConfig

        c = self.config
        samples = read_records(self.paths.eval_samples, Sample)
        if not samples:
            raise ValueError(f"evaluate: the evaluation split {c.data.eval_split!r} has no samples")
        systems: dict[str, ModelConfig] = {}
        if c.evaluation.include_base:
            systems["base"] = c.policy
        tuned = dataclasses.replace(c.policy, name_or_path=str(self.paths.model), adapter=None, backend="local")  # LoRA is merged; trained here, so run here
        systems["finetuned"] = tuned
        all_outputs: list[Output] = []
        table: dict[str, Any] = {}
        for system, model in systems.items():
            outputs, metrics = steps.evaluate_model(
                model, samples, self.task, c.evaluation.sampling, c.seed, system, self.paths.journal("evaluate", fp, f"-{system}")
            )
            all_outputs.extend(outputs)
            table[system] = metrics
        self._replacing("evaluate")
        write_records(self.paths.eval_outputs, all_outputs)
        result = {
            "run": c.name,
            "finetune_target": c.finetune.target,
            "selection": c.selection.method,
            "eval_split": c.data.eval_split,
            "systems": table,
            "table": format_table(table),
        }
        atomic_write_json(self.paths.metrics, result)
        return {system: {k: m[k] for k in ("rouge1", "rouge2", "rougeL", "mean_words")} for system, m in table.items()}


def read_metrics_table(run_dir: str | Path) -> str:
    return json.loads(RunPaths(Path(run_dir)).metrics.read_text())["table"]


__all__ = ["Pipeline", "STAGES", "RunPaths", "read_metrics_table"]
