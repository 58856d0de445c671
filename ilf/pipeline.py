"""One run: a method's stages over a run directory.

The stage table below says what each stage is for, which stages' outputs it reads and what it
writes:

    data -> outputs -> feedback -> refine -> select -> finetune -> evaluate     (ILF)
    data -> comparisons -> reward -> finetune | best-of-N -> evaluate           (ranking RLHF)

A run executes the stages its method needs (``method: ilf`` the first row; ``sft_reference``
only data, finetune and evaluate) plus those its metrics need. Each stage writes its outputs
atomically, then a marker holding what it read (``ilf.reads``): every config key, plug-in option
and file it read, with its value or its content's digest, the earlier outputs it read by content,
and what ``auto`` became on this machine. Nobody lists those inputs: the config, the plug-ins and
the model loader record them as the stage reads. Rerunning skips a stage when everything it read
still has the value it had and its outputs exist, so changing ``selection.method`` reruns
selection and then only what reads a changed selection; a stage recomputed to the same output
leaves the stages after it up to date. Generation stages journal each finished batch, so a run
killed half-way resumes without repeating or losing samples. ``--from`` forces a stage and all
after it; ``--until`` stops after a stage (to collect feedback on the outputs, say).

With a ``shared`` folder (a study gives its cells one), a finished stage is also published there,
and a run whose stage finds a published result whose reads all hold for it links the files instead
of computing them: one seed's outputs, feedback and refinements serve every method and size.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ilf import reads, steps
from ilf.config import ModelConfig, RunConfig, dump_config, to_plain
from ilf.data import load_eval, load_train, resolve_model
from ilf.errors import ModelLoadError
from ilf.evaluation import format_table
from ilf.execution.programs import check_sandbox
from ilf.feedback import get_source
from ilf.files import DirectoryLock, atomic_directory, atomic_write_json, atomic_write_text
from ilf.layout import FILES, RunPaths
from ilf.memory import StagePeak
from ilf.memory import describe as describe_peak
from ilf.methods import Method, get_method
from ilf.metrics import get_metrics, score_system
from ilf.plugin import configured_options
from ilf.records import Comparison, Feedback, Output, Refinements, Sample, Selection, read_records, write_records
from ilf.registry import ALL, SELECTORS
from ilf.results import RunResult
from ilf.tasks import get_task
from ilf.view import RunView

log = logging.getLogger(__name__)


MODEL_DIRS = ("model", "reward_model")


@dataclass(frozen=True)
class Stage:
    name: str
    after: tuple[str, ...]  # stages whose outputs it reads (besides the method's, for finetune)
    reads: str  # the config it reads, for the docs and `ilf status`
    writes: tuple[str, ...]  # keys of FILES
    run: Callable[[Pipeline, str], dict[str, Any]]  # (run, journal key) -> its summary


# ----- the stages --------------------------------------------------------------------------------


def _data(run: Pipeline, journal_key: str) -> dict[str, Any]:
    train = load_train(run.config)
    held_out = load_eval(run.config)
    if not train.samples:
        raise ValueError(f"data: no samples in split {run.config.data.split!r} of {run.config.data.path}")
    run.replacing("data")
    write_records(run.paths.samples, train.samples)
    write_records(run.paths.eval_samples, held_out.samples)
    write_records(run.paths.dataset_feedback, train.feedback)
    write_records(run.paths.dataset_comparisons, train.comparisons)
    for split, data in (("train", train), ("held-out", held_out)):
        for reason, count in data.dropped.items():
            log.warning("data: %d rows of the %s split had %s: left out", count, split, reason)
    return {
        "samples": len(train.samples),
        "eval_samples": len(held_out.samples),
        "dataset_feedback": len(train.feedback),
        "dataset_comparisons": len(train.comparisons),
        "dropped": train.dropped,
        "eval_dropped": held_out.dropped,
    }


def _outputs(run: Pipeline, journal_key: str) -> dict[str, Any]:
    c = run.config
    outputs, stats = steps.initial_outputs(
        run.samples(), run.task, run.outputs_model, c.outputs.sampling, c.seed, run.paths.journal("outputs", journal_key)
    )
    run.replacing("outputs")
    write_records(run.paths.outputs, outputs)
    return stats


def _feedback(run: Pipeline, journal_key: str) -> dict[str, Any]:
    samples = run.samples()
    ids = {s.id for s in samples}
    feedback, origin = run.feedback_source.collect(run.view)
    unknown = [f for f in feedback if f.sample_id not in ids]
    if unknown:
        log.warning("feedback: %d of %d records are for samples not in this run and were skipped (%s)", len(unknown), len(feedback), origin)
    empty = [f for f in feedback if f.sample_id in ids and not (f.text or "").strip()]
    kept = [f for f in feedback if f.sample_id in ids and (f.text or "").strip()]
    if not kept:
        raise ValueError(f"{origin}: no feedback for any of the {len(samples)} samples of this run")
    if empty:
        log.warning("feedback: %d of %d records are empty and were skipped (%s)", len(empty), len(feedback), origin)
    without = len(ids - {f.sample_id for f in kept})
    if without:
        log.warning("feedback: %d of %d samples have no feedback (empty, null or missing) and are not refined", without, len(ids))
    run.replacing("feedback")
    write_records(run.paths.feedback, kept)
    return {
        "feedback": len(kept),
        "skipped_empty": len(empty),
        "skipped_other_samples": len(unknown),
        "samples_with_feedback": len({f.sample_id for f in kept}),
        "samples_without_feedback": len(ids - {f.sample_id for f in kept}),
    }


def _refine(run: Pipeline, journal_key: str) -> dict[str, Any]:
    c = run.config
    records, stats = steps.refine(
        run.samples(),
        read_records(run.paths.outputs, Output),
        read_records(run.paths.feedback, Feedback),
        run.task,
        run.refiner,
        c.refine,
        c.seed,
        run.paths.journal("refine", journal_key),
    )
    run.replacing("refine")
    write_records(run.paths.refinements, records)
    return stats


def _select(run: Pipeline, journal_key: str) -> dict[str, Any]:
    selections, stats = steps.select_refinements(
        run.samples(), read_records(run.paths.refinements, Refinements), run.config, run.task, run.view
    )
    run.replacing("select")
    write_records(run.paths.selected, selections)
    return stats


def _comparisons(run: Pipeline, journal_key: str) -> dict[str, Any]:
    comparisons = run.feedback_source.compare(run.view, journal_key)
    if not comparisons:
        raise ValueError(f"comparisons: feedback source {run.config.feedback.source!r} gave no comparisons for the ranking methods")
    run.replacing("comparisons")
    write_records(run.paths.comparisons, comparisons)
    return {"comparisons": len(comparisons), "ties": sum(c.preferred == "tie" for c in comparisons)}


def _reward(run: Pipeline, journal_key: str) -> dict[str, Any]:
    """A reward model on the training samples' comparisons, a share held out for its accuracy."""
    from ilf.train.reward import RewardTrainingConfig, preference_pairs, train_reward_model  # torch, when it trains

    c = run.config
    pairs = preference_pairs(run.task, run.training_samples(), run.comparisons())
    random.Random(c.seed).shuffle(pairs)
    cut = len(pairs) - int(len(pairs) * c.reward.validation_share)
    run.replacing("reward")
    metrics = train_reward_model(
        run.resolve(c.reward.model) if c.reward.model else run.policy,
        pairs[:cut],
        RewardTrainingConfig(
            learning_rate=c.reward.learning_rate,
            num_train_epochs=c.reward.num_train_epochs,
            per_device_train_batch_size=c.reward.per_device_train_batch_size,
            max_length=c.finetune.max_length,
            lora=c.reward.lora,
            seed=c.seed,
        ),
        run.paths.reward_model,
        eval_pairs=pairs[cut:] or None,
    )
    return {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}


def _finetune(run: Pipeline, journal_key: str) -> dict[str, Any]:
    reads.note("training", "method", type(run.method).training_code())
    run.replacing("finetune")
    metrics = run.method.train(run.view)
    return {k: v for k, v in metrics.items() if k != "loss_history"}


def _evaluate(run: Pipeline, journal_key: str) -> dict[str, Any]:
    c = run.config
    samples = read_records(run.paths.eval_samples, Sample)
    if not samples:
        raise ValueError(f"evaluate: the evaluation split {c.data.eval_split!r} has no samples")
    systems = run.method.systems(run.view)
    table: dict[str, Any] = {}
    all_outputs: list[Output] = []
    for system, model in systems.items():
        outputs, metrics = run.method.generate(run.view, model, samples, system, run.paths.journal("evaluate", journal_key, f"-{system}"))
        metrics.update(score_system(run.metrics, run.view, samples, outputs))
        all_outputs.extend(outputs)
        table[system] = metrics
    round_metrics: dict[str, Any] = {}
    for metric in run.metrics:
        round_metrics.update(metric.score_round(run.view))
    round_metrics.update(run.method.spent(run.view))  # what a study sets methods side by side by
    round_metrics["train_samples"] = len(run.training_samples())
    run.replacing("evaluate")
    write_records(run.paths.eval_outputs, all_outputs)
    primary = run.method.primary_system(systems)
    columns = tuple(dict.fromkeys(k for m in run.metrics for k in m.columns))
    with reads.unrecorded():  # the run's name is written beside the results, not computed from; a rename rewrites it
        name = c.name
    RunResult(
        run=name,
        method=c.method,
        seed=c.seed,
        finetune_target=c.finetune.target,
        selection=c.selection.method,
        eval_split=c.data.eval_split,
        primary=primary,
        systems=table,
        round=round_metrics,
        table=format_table(table, columns=columns or ("mean_words",)),
    ).write(run.paths.metrics)
    return {system: {k: m[k] for k in columns if k in m} for system, m in table.items()}


STAGE_TABLE: tuple[Stage, ...] = (
    Stage(
        "data",
        (),
        "`data.*`: the data loader `data.loader` names reads the training and held-out splits",
        ("samples", "eval_samples", "dataset_feedback", "dataset_comparisons"),
        _data,
    ),
    Stage(
        "outputs",
        ("data",),
        "samples; the policy (`outputs.sampling`) writes an output for each sample that lacks one",
        ("outputs",),
        _outputs,
    ),
    Stage("feedback", ("outputs",), "`feedback.source`: a feedback source critiques each output", ("feedback",), _feedback),
    Stage(
        "refine",
        ("feedback",),
        "the refiner, `refine.*`: N candidate refinements of each output, with (or without) its feedback",
        ("refinements",),
        _refine,
    ),
    Stage(
        "select",
        ("refine",),
        "`selection.*`, `selection_options.*`: a selector picks one candidate, the `also_score` selectors score them too",
        ("selected",),
        _select,
    ),
    Stage(
        "comparisons",
        ("data",),
        "`feedback.source`: its comparisons of two outputs (the ranking methods)",
        ("comparisons",),
        _comparisons,
    ),
    Stage("reward", ("comparisons",), "`reward.*`: TRL `RewardTrainer` on the comparisons", ("reward_model",), _reward),
    Stage(
        "finetune",
        (),
        "`method`, `finetune.*` (and `method_options.*`): the policy trained on the method's targets",
        ("model",),
        _finetune,
    ),
    Stage(
        "evaluate",
        (),
        "`evaluation.*`, `metric_options.*`: the method's systems on the held-out split, scored by every metric of `evaluation.metrics`",
        ("eval_outputs", "metrics"),
        _evaluate,
    ),
)
STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGE_TABLE)
_BY_NAME = {stage.name: stage for stage in STAGE_TABLE}


def model_settings(config: Any) -> list[ModelConfig]:
    """Every model a config names (policy, refiner, judges, ...), found in its sections."""
    found: list[ModelConfig] = []
    if isinstance(config, ModelConfig):
        return [config]
    if dataclasses.is_dataclass(config):
        for field in dataclasses.fields(config):
            found += model_settings(getattr(config, field.name))
    elif isinstance(config, (list, tuple)):
        for item in config:
            found += model_settings(item)
    elif isinstance(config, dict):
        for item in config.values():
            found += model_settings(item)
    return found


def train_world_models(
    configs: list[RunConfig], spread: Callable[[Callable[[Any], str], list[Any]], list[str]] | None = None
) -> list[dict[str, Any]]:
    """Train (or find cached) every world model these configs name before any cell runs: a study's
    profile then shows pretraining as its own stage, and cells that spread over worker processes
    find the model trained, instead of the first worker to ask training it on its share while the
    rest wait. One model trains here with every thread; several train side by side where ``spread``
    maps them over processes (a study's workers: on 2 cores, two one-thread trainings took 0.8x the
    time of one after the other with two threads each).

    Returns one record per model trained here (its path and seconds); cached ones are not listed."""
    distinct: dict[str, tuple[RunConfig, ModelConfig]] = {}
    for config in configs:
        for model in [*model_settings(config), *model_settings(configured_options(config))]:
            if model.name_or_path.partition("@")[0] == "pretrained":
                key = json.dumps([config.data.loader, model.name_or_path, to_plain(config.pretraining)], sort_keys=True, default=str)
                distinct.setdefault(key, (config, model))
    started = dt.datetime.now(dt.timezone.utc)
    todo = list(distinct.values())
    if spread is not None and len(todo) > 1:
        paths = spread(_world_model_path, todo)
    else:
        paths = [_world_model_path(item) for item in todo]
    trained = []
    for path in dict.fromkeys(paths):
        metrics = Path(path) / "pretrain_metrics.json"
        if metrics.exists() and dt.datetime.fromtimestamp(metrics.stat().st_mtime, dt.timezone.utc) >= started:
            trained.append({"path": path, "seconds": json.loads(metrics.read_text()).get("seconds")})
    return trained


def _world_model_path(item: tuple[RunConfig, ModelConfig]) -> str:
    config, model = item
    return str(resolve_model(config, model).name_or_path)


NOT_RUN = "it has not run"
OLD_MARKER = "its marker is from an ilf that listed a stage's inputs by hand, not what the stage read"


class Pipeline:
    def __init__(
        self, config: RunConfig, run_dir: str | Path, shared: str | Path | None = None, earlier: list[Pipeline] | None = None
    ) -> None:
        self.earlier = earlier or []  # earlier rounds whose targets training also reads (round_training: restart)
        # Its own copy, bound: every read of a section by a stage is recorded under its key.
        self.config = reads.bind(copy.deepcopy(get_method(config.method, config).configure(config)))
        self.paths = RunPaths(Path(run_dir))
        self.shared = Path(shared) if shared is not None else None
        self._built: dict[str, tuple[Any, reads.Reads]] = {}
        self.stages = self._needed_stages()
        self.view = RunView(self)  # what its plug-ins' hooks are handed

    # ----- what the stages use, built once, with what building it read ------------------------

    def _build(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()`` once; every stage that uses the result also records what building it read."""
        if name not in self._built:
            with reads.apart(self.paths.root) as recorded:
                built = make()
            self._built[name] = (built, recorded)
        built, recorded = self._built[name]
        reads.merge(recorded)
        return built

    @property
    def method(self) -> Method:
        """The method; building it reads nothing a stage depends on: finetune records the code its
        training runs (``training_code``), evaluate the method's name, and each its options."""

        def make() -> Method:
            with reads.unrecorded():
                return get_method(self.config.method, self.config)

        return self._build("method", make)  # type: ignore[no-any-return]

    @property
    def task(self) -> Any:
        return self._build("task", lambda: get_task(self.config.task))

    @property
    def feedback_source(self) -> Any:
        return self._build("feedback_source", lambda: get_source(self.config.feedback.source, self.config, self.task))

    @property
    def metrics(self) -> list[Any]:
        return self._build("metrics", lambda: get_metrics(self.config.evaluation.metrics, self.config, self.task))  # type: ignore[no-any-return]

    # ----- models ------------------------------------------------------------------------------

    @property
    def policy(self) -> ModelConfig:
        """The policy as configured, with ``pretrained`` resolved to the pretraining section's model."""
        return self._build("policy", lambda: self.resolve(self.config.policy))  # type: ignore[no-any-return]

    @property
    def refiner(self) -> ModelConfig:
        return self.resolve(self.config.refiner_model)

    @property
    def outputs_model(self) -> ModelConfig:
        """The model that writes the outputs feedback is about: the policy unless outputs.model says otherwise."""
        return self.resolve(self.config.outputs.model) if self.config.outputs.model else self.policy

    def resolve(self, model: ModelConfig) -> ModelConfig:
        return resolve_model(self.config, model)

    def trained(self, path: Path) -> ModelConfig:
        """A model this run trained: the policy's settings, loaded from ``path`` in this process."""
        return dataclasses.replace(self.policy, name_or_path=str(path), adapter=None, backend="local")

    # ----- records -----------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        return read_records(self.paths.samples, Sample)

    def training_samples(self) -> list[Sample]:
        """The first ``finetune.train_samples`` samples: the nested subset this run trains on; with
        ``finetune.budget``, the first of those whose feedback the budget pays for."""
        samples = self.samples()
        limit = self.config.finetune.train_samples
        if limit is not None and limit > len(samples):
            raise ValueError(f"finetune.train_samples: {limit} is more than the {len(samples)} samples of the round")
        samples = samples if limit is None else samples[:limit]
        budget = self.config.finetune.budget
        if budget is None:
            return samples
        spent, kept = 0.0, 0
        for seconds in self.method.sample_seconds(self.view, samples):
            if spent + seconds > budget:
                break
            spent, kept = spent + seconds, kept + 1
        return samples[:kept]

    def comparisons(self) -> list[Comparison]:
        keep = {s.id for s in self.training_samples()}
        return [c for c in read_records(self.paths.comparisons, Comparison) if c.sample_id in keep]

    def selections(self) -> list[Selection]:
        return read_records(self.paths.selected, Selection)

    def selector_classes(self) -> list[Any]:
        """The selectors of ``selection.method`` and ``also_score`` (their modules alone imported)."""
        return [SELECTORS.get(name) for name in dict.fromkeys([self.config.selection.method, *self.config.selection.also_score])]

    # ----- bookkeeping -------------------------------------------------------------------------

    def _needed_stages(self) -> tuple[str, ...]:
        with reads.unrecorded():
            wanted = set(self.method.stages(self.config)) | {"data", "evaluate"}
            for metric in self.metrics:
                wanted |= set(metric.needs)
            if self.method.trains:
                wanted.add("finetune")
        for stage in STAGE_TABLE[::-1]:  # close over what the wanted stages read
            if stage.name in wanted:
                wanted |= set(stage.after)
        return tuple(s for s in STAGES if s in wanted)

    def after(self, stage: str) -> tuple[str, ...]:
        """The stages whose outputs ``stage`` reads (what it waits for, and shares a result by)."""
        if stage == "finetune":  # the training samples and their references come from the data stage, whatever the method
            with reads.unrecorded():
                return ("data", *self.method.train_after(self.config))
        if stage == "evaluate":
            return tuple(s for s in self.stages if s != "evaluate")
        return _BY_NAME[stage].after

    def stage_outputs(self, stage: str) -> list[Path]:
        # A model folder is complete once its config is written (it is written atomically).
        return [getattr(self.paths, key) / ("config.json" if key in MODEL_DIRS else "") for key in _BY_NAME[stage].writes]

    def current(self, kind: str, where: Any) -> Any:
        """What a recorded read gives now, for this run's config and files."""
        if kind == "config":
            return reads.lookup(self.config, where)
        if kind == "options":
            registry = next(r for r in ALL if r.options_key == where[0])
            with reads.unrecorded():
                return reads.plain(registry.get(where[1]).options(self.config))
        if kind == "content":
            return reads.content_digest(where)
        if kind == "output":
            return reads.content_digest(self.paths.root / where)
        if kind == "probe":
            return reads.probe(where[0], *where[1:])
        if kind == "training":  # the training code of the method the config names now
            with reads.unrecorded():
                return type(get_method(self.config.method, self.config)).training_code()
        raise ValueError(f"unknown kind of read {kind!r}")

    def why_pending(self, stage: str) -> str | None:
        """None when ``stage`` is up to date (everything it read unchanged, its outputs there); else why not."""
        marker = _read_marker(self.paths.marker(stage))
        return NOT_RUN if marker is None else self._why_not({**marker, "stage": stage})

    def _why_not(self, marker: dict[str, Any]) -> str | None:
        if "reads" not in marker:
            return OLD_MARKER
        stage = marker.get("stage", "")
        if stage in _BY_NAME and not self._outputs_exist(stage):
            return "its outputs are missing"
        return reads.check(marker["reads"], self.current)

    def _outputs_exist(self, stage: str) -> bool:
        return all(p.exists() for p in self.stage_outputs(stage))

    def status(self, reasons: bool = False) -> dict[str, str]:
        """Each stage: ``done``; ``pending`` (with ``reasons``, why); or ``waits on S``: what it read is
        unchanged, and it stays up to date unless the pending stage S it reads writes other output."""
        states: dict[str, str] = {}
        for stage in self.stages:
            why = self.why_pending(stage)
            if why is not None:
                states[stage] = f"pending: {why}" if reasons else "pending"
                continue
            waiting = [
                states[s].removeprefix("waits on ") if states[s].startswith("waits") else s
                for s in self.after(stage)
                if states.get(s, "done") != "done"
            ]
            states[stage] = f"waits on {waiting[0]}" if waiting else "done"
        if states.get("feedback", "done") != "done":
            note = self.feedback_source.status_note(self.view)
            if note:
                states["feedback"] = f"pending: {note}"
        return states

    def replacing(self, stage: str) -> None:
        """Call just before a stage overwrites its outputs: its marker no longer describes them.

        Later markers may stay: they record the content of what they read, so they hold again
        only if this stage reproduces the outputs they were computed from. A stage that fails before
        writing (bad input, say) leaves the directory exactly as it was.
        """
        self.paths.marker(stage).unlink(missing_ok=True)

    def _upstream_key(self, stage: str) -> str:
        """The content of the earlier outputs ``stage`` reads: the key its shared results and the
        lock of a study's cells computing it at once are filed under."""
        digests = [
            [key, reads.content_digest(getattr(self.paths, key))]
            for s in self.after(stage)
            if s in self.stages
            for key in _BY_NAME[s].writes
        ]
        return hashlib.sha256(json.dumps([stage, digests]).encode()).hexdigest()[:16]

    def _journal_key(self, upstream: str) -> str:
        """A generation journal is resumed only by the same config over the same earlier outputs."""
        text = json.dumps([upstream, reads.plain(self.config), [reads.probe("version", p) for p in reads.VERSIONED]], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ----- sharing between the runs of a study -------------------------------------------------

    def _shared_candidates(self, stage: str, upstream: str) -> list[Path]:
        if self.shared is None or not self.shared.is_dir():
            return []
        found = [p for p in self.shared.glob(f"{stage}-{upstream}-*") if (p / "marker.json").exists()]
        return sorted(found, key=lambda p: (p / "marker.json").stat().st_mtime, reverse=True)

    def _adopt_shared(self, stage: str, upstream: str) -> dict[str, Any] | None:
        """Link a stage's outputs published by another run whose reads all hold for this one."""
        for source in self._shared_candidates(stage, upstream):
            marker = _read_marker(source / "marker.json")
            if marker is None or self._why_not({**marker, "stage": ""}) is not None:
                continue
            self.replacing(stage)
            for key in _BY_NAME[stage].writes:
                _link(source / FILES[key], getattr(self.paths, key))
            atomic_write_json(self.paths.marker(stage), {**marker, "shared_from": str(source)})
            return {"shared_from": str(source)}
        return None

    def _shared_lock(self, stage: str, upstream: str) -> Path:
        assert self.shared is not None
        return self.shared / f".{stage}-{upstream}.lock"

    def _publish_shared(self, stage: str, upstream: str) -> None:
        if self.shared is None:
            return
        marker = _read_marker(self.paths.marker(stage))
        if marker is None:
            return
        target = self.shared / f"{stage}-{upstream}-{marker['key']}"
        if (target / "marker.json").exists():
            return
        with atomic_directory(target) as tmp:
            for key in _BY_NAME[stage].writes:
                _link(getattr(self.paths, key), tmp / FILES[key])
            shutil.copy2(self.paths.marker(stage), tmp / "marker.json")

    def _compute(self, stage: str, upstream: str) -> dict[str, Any]:
        """Run one stage over the earlier outputs whose content ``upstream`` digests, recording what
        it reads, and write its marker; what it computed is then this run's."""
        log.info("stage %s: running", stage)
        journal_key = self._journal_key(upstream)
        started = dt.datetime.now(dt.timezone.utc)
        peak = StagePeak().start()
        writes = [getattr(self.paths, key) for key in _BY_NAME[stage].writes]
        try:
            with reads.recording(self.paths.root, writes=tuple(writes)) as recorded:
                for package in reads.VERSIONED:
                    reads.note_probe("version", package)
                summary = _BY_NAME[stage].run(self, journal_key)
        except ModelLoadError as err:
            raise ModelLoadError(self._name_model_key(str(err))) from err
        finished = dt.datetime.now(dt.timezone.utc)
        memory = peak.result()
        log.info("stage %s: done in %.1f s, %s", stage, (finished - started).total_seconds(), describe_peak(memory))
        atomic_write_json(
            self.paths.marker(stage),
            {
                "stage": stage,
                "key": recorded.digest(),
                "started": started.isoformat(),
                "finished": finished.isoformat(),
                "peak_memory": memory,
                "summary": summary,
                "reads": recorded.entries(),
            },
        )
        for old in (self.paths.state / "partial").glob(f"{stage}*-*.jsonl"):
            old.unlink(missing_ok=True)
        return summary

    def _name_model_key(self, message: str) -> str:
        """Name the config key of a model that failed to load (the loader knows only the name)."""
        prefix, _, rest = message.partition(": cannot load model ")
        name = rest.split("'")[1] if rest.count("'") >= 2 else None
        with reads.unrecorded():
            models = _model_keys(self.config)
            for cls in self.selector_classes():  # a selector's judge, say
                models.update({f"{cls.options_key}.{cls.name}": m.name_or_path for m in cls.models(self.config)})
        keys = [key for key, value in models.items() if value == name]
        return f"{' / '.join(keys)}: cannot load model {rest}" if keys and rest else message

    # ----- running -----------------------------------------------------------------------------

    def run(self, from_stage: str | None = None, until: str | None = None) -> dict[str, Any]:
        for name, value in (("--from", from_stage), ("--until", until)):
            if value is not None and value not in self.stages:
                raise ValueError(f"{name}: stage {value!r} is not one of method {self.config.method!r}'s stages ({', '.join(self.stages)})")
        forced = self.stages.index(from_stage) if from_stage else len(self.stages)
        last = self.stages.index(until) if until else len(self.stages) - 1
        check_sandbox(self.task)  # a code run without isolation is refused before any stage runs a program
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.paths.state / "lock"):
            if "feedback" in self.stages[: last + 1]:
                self.feedback_source.prepare(self.view)
            if "select" in self.stages[: last + 1]:
                for cls in self.selector_classes():
                    cls.prepare(self.view)
            self._say_if_markers_predate()
            summaries: dict[str, Any] = {}
            for index, stage in enumerate(self.stages[: last + 1]):
                if index < forced:
                    why = self.why_pending(stage)
                    if why is None:
                        log.debug("stage %s: up to date, skipped", stage)
                        summaries[stage] = "skipped"
                        continue
                    if why != NOT_RUN:
                        log.info("stage %s: reruns: %s", stage, why)
                upstream = self._upstream_key(stage)
                if index < forced and self.shared is not None:
                    # a cell running beside this one may be computing the same stage: wait for it and link its result
                    with DirectoryLock(self._shared_lock(stage, upstream), wait=True):
                        if self._adopt_shared(stage, upstream) is not None:
                            log.debug("stage %s: shared with an earlier run", stage)
                            summaries[stage] = "shared"
                            continue
                        summary = self._compute(stage, upstream)
                        self._publish_shared(stage, upstream)
                else:
                    summary = self._compute(stage, upstream)
                    self._publish_shared(stage, upstream)
                # Recorded once a stage has succeeded, so a run that fails on bad input leaves the
                # directory describing the last run that worked.
                atomic_write_text(self.paths.config, dump_config(self.config))
                summaries[stage] = summary
            atomic_write_text(self.paths.config, dump_config(self.config))
            self._write_name()
            return summaries

    def compute_stage(self, stage: str) -> dict[str, Any]:
        """Compute one stage now, as a run does (the sources' and selectors' ``prepare`` first),
        whatever its marker says: ``ilf refine``, ``ilf select`` and ``ilf finetune`` over files."""
        check_sandbox(self.task)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.paths.state / "lock"):
            if stage == "feedback":
                self.feedback_source.prepare(self.view)
            if stage == "select":
                for cls in self.selector_classes():
                    cls.prepare(self.view)
            return self._compute(stage, self._upstream_key(stage))

    def _say_if_markers_predate(self) -> None:
        old = [s for s in self.stages if "reads" not in (_read_marker(self.paths.marker(s)) or {"reads": []})]
        if old:
            log.warning(
                "%s: the markers of %s are from an ilf that listed each stage's inputs by hand; those stages recompute "
                "once and record what they read",
                self.paths.root,
                ", ".join(old),
            )

    def _write_name(self) -> None:
        """``metrics.json`` names the run as the config now does (a rename recomputes nothing)."""
        if not self.paths.metrics.exists():
            return
        with reads.unrecorded():
            name = self.config.name
        result = RunResult.read(self.paths.metrics)
        if result.run != name:
            dataclasses.replace(result, run=name).write(self.paths.metrics)


_RECORDS: dict[str, type] = {
    "samples": Sample,
    "eval_samples": Sample,
    "outputs": Output,
    "feedback": Feedback,
    "refinements": Refinements,
    "selected": Selection,
    "comparisons": Comparison,
}


def stage_over_files(
    config: RunConfig, stage: str, inputs: dict[str, Path | list[Any]], outputs: dict[str, Path], work: Path
) -> dict[str, Any]:
    """``stage`` computed by the very function a run computes it with, over files named on the
    command line: each of ``inputs`` (a key of ``FILES`` and a file, or records) becomes an earlier
    stage's output in the run directory ``work``, and the stage's outputs are moved to ``outputs``.
    ``work`` stays when the stage fails, so the same command resumes a killed generation."""
    pipeline = Pipeline(config, work)
    for key, source in inputs.items():
        target = getattr(pipeline.paths, key)
        if isinstance(source, list):
            write_records(target, source)
        else:
            read_records(source, _RECORDS[key])  # a bad line is named in the file given, not in its copy
            _link(Path(source), target)
    summary = pipeline.compute_stage(stage)
    for key, destination in outputs.items():
        produced = getattr(pipeline.paths, key)
        if not produced.exists():
            continue  # not this process's to write (a rank other than 0 of a launcher's)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if produced.is_dir():
            with atomic_directory(destination) as tmp:
                tmp.rmdir()
                os.replace(produced, tmp)
        else:
            os.replace(produced, destination)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _model_keys(config: RunConfig) -> dict[str, str]:
    models = {
        "policy": config.policy,
        "refiner": config.refiner,
        "reward.model": config.reward.model,
    }
    return {f"{key}.name_or_path": model.name_or_path for key, model in models.items() if model is not None}


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _link(source: Path, target: Path) -> None:
    """Hard-link a file or a folder tree (copy across file systems); replaces ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


__all__ = ["Pipeline", "STAGES", "STAGE_TABLE", "RunPaths", "stage_over_files"]
