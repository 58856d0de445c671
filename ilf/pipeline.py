"""One run: a method's stages over a run directory.

The stage table below is the only place that says what each stage reads, writes and does:

    data -> outputs -> feedback -> refine -> select -> finetune -> evaluate     (ILF)
    data -> comparisons -> reward -> finetune | best-of-N -> evaluate           (ranking RLHF)

A run executes the stages its method needs (``method: ilf`` the first row; ``sft_reference``
only data, finetune and evaluate) plus those its metrics need. Each stage writes its outputs
atomically, then a marker holding its fingerprint: a hash of the config sections it reads and of
the fingerprints of the stages it reads from. Rerunning skips a stage whose marker matches and
whose outputs exist, so changing ``selection.method`` reruns selection, fine-tuning and
evaluation and nothing before. Generation stages journal each finished batch, so a run killed
half-way resumes without repeating or losing samples. ``--from`` forces a stage and all after it;
``--until`` stops after a stage (to collect feedback on the outputs, say).

With a ``shared`` folder (a study gives its cells one), a finished stage is also published there
under its fingerprint, and a run whose stage has the same fingerprint links the files instead of
computing them: one seed's outputs, feedback and refinements serve every method and size.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ilf import steps
from ilf.config import ModelConfig, RunConfig, dump_config, fingerprint
from ilf.data import load_eval, load_train, loader_fingerprint_inputs, resolve_model
from ilf.errors import ModelLoadError
from ilf.evaluation import format_table
from ilf.execution.programs import check_sandbox
from ilf.feedback import get_source
from ilf.files import DirectoryLock, atomic_directory, atomic_write_json, atomic_write_text, files_digest
from ilf.layout import FILES, RunPaths
from ilf.memory import StagePeak
from ilf.memory import describe as describe_peak
from ilf.methods import Method, get_method
from ilf.metrics import get_metrics, score_system
from ilf.plugin import configured_options
from ilf.records import Comparison, Feedback, Output, Refinements, Sample, Selection, read_records, write_records
from ilf.registry import SELECTORS
from ilf.results import RunResult
from ilf.tasks import get_task

log = logging.getLogger(__name__)


MODEL_DIRS = ("model", "reward_model")


@dataclass(frozen=True)
class Stage:
    name: str
    after: tuple[str, ...]  # stages whose outputs it reads (besides the method's, for finetune)
    reads: str  # the config it reads, for the docs and `ilf status`
    writes: tuple[str, ...]  # keys of FILES
    inputs: Callable[[Pipeline], list[Any]]  # the config values its fingerprint covers
    run: Callable[[Pipeline, str], dict[str, Any]]


# ----- the stages --------------------------------------------------------------------------------


def _data(run: Pipeline, fp: str) -> dict[str, Any]:
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


def _outputs(run: Pipeline, fp: str) -> dict[str, Any]:
    c = run.config
    outputs, stats = steps.initial_outputs(
        run.samples(), run.task, run.outputs_model, c.outputs.sampling, c.seed, run.paths.journal("outputs", fp)
    )
    run.replacing("outputs")
    write_records(run.paths.outputs, outputs)
    return stats


def _feedback(run: Pipeline, fp: str) -> dict[str, Any]:
    samples = run.samples()
    ids = {s.id for s in samples}
    feedback, origin = run.feedback_source.collect(run)
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


def _refine(run: Pipeline, fp: str) -> dict[str, Any]:
    c = run.config
    records, stats = steps.refine(
        run.samples(),
        read_records(run.paths.outputs, Output),
        read_records(run.paths.feedback, Feedback),
        run.task,
        run.refiner,
        c.refine,
        c.seed,
        run.paths.journal("refine", fp),
    )
    run.replacing("refine")
    write_records(run.paths.refinements, records)
    return stats


def _select(run: Pipeline, fp: str) -> dict[str, Any]:
    selections, stats = steps.select_refinements(run.samples(), read_records(run.paths.refinements, Refinements), run.config, run.task, run)
    run.replacing("select")
    write_records(run.paths.selected, selections)
    return stats


def _comparisons(run: Pipeline, fp: str) -> dict[str, Any]:
    comparisons = run.feedback_source.compare(run, fp)
    if not comparisons:
        raise ValueError(f"comparisons: feedback source {run.config.feedback.source!r} gave no comparisons for the ranking methods")
    run.replacing("comparisons")
    write_records(run.paths.comparisons, comparisons)
    return {"comparisons": len(comparisons), "ties": sum(c.preferred == "tie" for c in comparisons)}


def _reward(run: Pipeline, fp: str) -> dict[str, Any]:
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


def _finetune(run: Pipeline, fp: str) -> dict[str, Any]:
    run.replacing("finetune")
    metrics = run.method.train(run)
    return {k: v for k, v in metrics.items() if k != "loss_history"}


def _evaluate(run: Pipeline, fp: str) -> dict[str, Any]:
    c = run.config
    samples = read_records(run.paths.eval_samples, Sample)
    if not samples:
        raise ValueError(f"evaluate: the evaluation split {c.data.eval_split!r} has no samples")
    systems = run.method.systems(run)
    table: dict[str, Any] = {}
    all_outputs: list[Output] = []
    for system, model in systems.items():
        outputs, metrics = run.method.generate(run, model, samples, system, run.paths.journal("evaluate", fp, f"-{system}"))
        metrics.update(score_system(run.metrics, run, samples, outputs))
        all_outputs.extend(outputs)
        table[system] = metrics
    round_metrics: dict[str, Any] = {}
    for metric in run.metrics:
        round_metrics.update(metric.score_round(run))
    cost = run.method.feedback_cost(run)  # what a study sets methods side by side by
    round_metrics.update({f"cost.{kind}": count for kind, count in sorted(cost.items())})
    round_metrics["feedback_cost"] = sum(cost.values())
    run.replacing("evaluate")
    write_records(run.paths.eval_outputs, all_outputs)
    primary = run.method.primary_system(systems)
    columns = tuple(dict.fromkeys(k for m in run.metrics for k in m.columns))
    RunResult(
        run=c.name,
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


def _data_inputs(run: Pipeline) -> list[Any]:
    c = run.config
    return [c.data, files_digest(c.data.path), files_digest(c.data.eval_path), *loader_fingerprint_inputs(c)]


def _finetune_inputs(run: Pipeline) -> list[Any]:
    c = run.config
    earlier = [e.training_fingerprints() for e in run.earlier]  # a round that retrains on every round's targets so far
    return [run.method.fingerprint_inputs(c), run.model_inputs(c.policy), c.pretraining, c.finetune, c.task, c.seed, *earlier]


STAGE_TABLE: tuple[Stage, ...] = (
    Stage(
        "data",
        (),
        "`data.*`: the data loader `data.loader` names reads the training and held-out splits",
        ("samples", "eval_samples", "dataset_feedback", "dataset_comparisons"),
        _data_inputs,
        _data,
    ),
    Stage(
        "outputs",
        ("data",),
        "samples; the policy (`outputs.sampling`) writes an output for each sample that lacks one",
        ("outputs",),
        lambda r: [
            r.model_inputs(r.config.outputs.model or r.config.policy),
            r.config.pretraining,
            r.config.task,
            r.config.outputs.sampling,
            r.config.seed,
        ],
        _outputs,
    ),
    Stage(
        "feedback",
        ("outputs",),
        "`feedback.source`: a feedback source critiques each output",
        ("feedback",),
        lambda r: [r.config.feedback.source, r.feedback_source.fingerprint_inputs(r)],
        _feedback,
    ),
    Stage(
        "refine",
        ("feedback",),
        "the refiner, `refine.*`: N candidate refinements of each output, with (or without) its feedback",
        ("refinements",),
        lambda r: [r.model_inputs(r.config.refiner_model), r.config.pretraining, r.config.refine, r.config.task, r.config.seed],
        _refine,
    ),
    Stage(
        "select",
        ("refine",),
        "`selection.*`, `selection_options.*`: a selector picks one candidate, the `also_score` selectors score them too",
        ("selected",),
        lambda r: [r.config.selection, *[r.selector_inputs(cls) for cls in r.selector_classes()]],
        _select,
    ),
    Stage(
        "comparisons",
        ("data",),
        "`feedback.source`: its comparisons of two outputs (the ranking methods)",
        ("comparisons",),
        lambda r: [r.config.feedback.source, r.feedback_source.comparison_inputs(r)],
        _comparisons,
    ),
    Stage(
        "reward",
        ("comparisons",),
        "`reward.*`: TRL `RewardTrainer` on the comparisons",
        ("reward_model",),
        lambda r: [
            r.config.reward,
            r.model_inputs(r.config.policy),
            r.config.pretraining,
            r.config.finetune.max_length,
            r.config.finetune.train_samples,
            r.config.task,
            r.config.seed,
        ],
        _reward,
    ),
    Stage(
        "finetune",
        (),
        "`method`, `finetune.*` (and `method_options.*`): the policy trained on the method's targets",
        ("model",),
        _finetune_inputs,
        _finetune,
    ),
    Stage(
        "evaluate",
        (),
        "`evaluation.*`, `metric_options.*`: the method's systems on the held-out split, scored by every metric of `evaluation.metrics`",
        ("eval_outputs", "metrics"),
        lambda r: [
            r.config.method,
            r.config.evaluation,
            r.model_inputs(r.config.policy),
            r.config.pretraining,
            r.config.task,
            r.config.reward.best_of_n,
            r.config.seed,
            # Only metrics that read files or have options add inputs, so the fingerprints of runs without them stay as they were.
            *[inputs for m in r.metrics if (inputs := m.fingerprint_inputs(r))],
            *[options for m in r.metrics if (options := m.options(r.config)) is not None],
        ],
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


def train_world_models(configs: list[RunConfig]) -> list[dict[str, Any]]:
    """Train (or find cached) every world model these configs name, in this process, one after
    another, before any cell runs: a study's profile then shows pretraining as its own stage, and
    cells that spread over worker processes find the model trained with every thread, instead of
    the first worker to ask training it on its share while the rest wait.

    Returns one record per model trained here (its path and seconds); cached ones are not listed."""
    trained = []
    seen: set[str] = set()
    for config in configs:
        for model in [*model_settings(config), *model_settings(configured_options(config))]:
            if not model.name_or_path.partition("@")[0] == "pretrained":
                continue
            started = dt.datetime.now(dt.timezone.utc)
            path = Path(resolve_model(config, model).name_or_path)
            metrics = path / "pretrain_metrics.json"
            if str(path) in seen or not metrics.exists():
                continue
            seen.add(str(path))
            if dt.datetime.fromtimestamp(metrics.stat().st_mtime, dt.timezone.utc) >= started:
                trained.append({"path": str(path), "seconds": json.loads(metrics.read_text()).get("seconds")})
    return trained


class Pipeline:
    def __init__(
        self, config: RunConfig, run_dir: str | Path, shared: str | Path | None = None, earlier: list[Pipeline] | None = None
    ) -> None:
        self.earlier = earlier or []  # earlier rounds whose targets training also reads (round_training: restart)
        self.method: Method = get_method(config.method, config)
        self.config = self.method.configure(config)
        self.paths = RunPaths(Path(run_dir))
        self.shared = Path(shared) if shared is not None else None
        self.task = get_task(self.config.task)
        self.feedback_source = get_source(self.config.feedback.source, self.config, self.task)
        self.metrics = get_metrics(self.config.evaluation.metrics, self.config, self.task)
        self.stages = self._needed_stages()
        self._policy: ModelConfig | None = None

    # ----- models ------------------------------------------------------------------------------

    @property
    def policy(self) -> ModelConfig:
        """The policy as configured, with ``pretrained`` resolved to the pretraining section's model."""
        if self._policy is None:
            self._policy = self.resolve(self.config.policy)
        return self._policy

    @property
    def refiner(self) -> ModelConfig:
        return self.resolve(self.config.refiner_model)

    @property
    def outputs_model(self) -> ModelConfig:
        """The model that writes the outputs feedback is about: the policy unless outputs.model says otherwise."""
        return self.resolve(self.config.outputs.model) if self.config.outputs.model else self.policy

    @staticmethod
    def model_inputs(model: ModelConfig) -> list[Any]:
        """What identifies a model for a fingerprint: its settings, and for a local folder its files,
        so a model retrained in place (an earlier round's) reruns the stages that used it."""
        return [model, files_digest(model.name_or_path) if Path(model.name_or_path).expanduser().is_dir() else []]

    def resolve(self, model: ModelConfig) -> ModelConfig:
        return resolve_model(self.config, model)

    def trained(self, path: Path) -> ModelConfig:
        """A model this run trained: the policy's settings, loaded from ``path`` in this process."""
        return dataclasses.replace(self.policy, name_or_path=str(path), adapter=None, backend="local")

    # ----- records -----------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        return read_records(self.paths.samples, Sample)

    def training_samples(self) -> list[Sample]:
        """The first ``finetune.train_samples`` samples: the nested subset this run trains on."""
        samples = self.samples()
        limit = self.config.finetune.train_samples
        if limit is not None and limit > len(samples):
            raise ValueError(f"finetune.train_samples: {limit} is more than the {len(samples)} samples of the round")
        return samples if limit is None else samples[:limit]

    def comparisons(self) -> list[Comparison]:
        keep = {s.id for s in self.training_samples()}
        return [c for c in read_records(self.paths.comparisons, Comparison) if c.sample_id in keep]

    def selections(self) -> list[Selection]:
        return read_records(self.paths.selected, Selection)

    def selector_classes(self) -> list[Any]:
        """The selectors of ``selection.method`` and ``also_score`` (their modules alone imported)."""
        return [SELECTORS.get(name) for name in dict.fromkeys([self.config.selection.method, *self.config.selection.also_score])]

    def selector_inputs(self, cls: Any) -> list[Any]:
        """What a selector's scores depend on besides ``selection.*`` and the refinements: its
        options, the models it reads, and what its ``fingerprint_inputs`` names."""
        return [
            cls.name,
            cls.options(self.config),
            [self.model_inputs(self.resolve(model)) for model in cls.models(self.config)],
            cls.fingerprint_inputs(self),
        ]

    # ----- bookkeeping -------------------------------------------------------------------------

    def _needed_stages(self) -> tuple[str, ...]:
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
        if stage == "finetune":  # the training samples and their references come from the data stage, whatever the method
            return ("data", *self.method.train_after(self.config))
        if stage == "evaluate":
            return tuple(s for s in self.stages if s != "evaluate")
        return _BY_NAME[stage].after

    def training_fingerprints(self) -> list[str]:
        """The fingerprints of the stages this run's training targets come from."""
        fps = self.fingerprints()
        return [fps[s] for s in self.after("finetune") if s in fps]

    def fingerprints(self) -> dict[str, str]:
        fps: dict[str, str] = {}
        for stage in self.stages:
            upstream = [fps[s] for s in self.after(stage) if s in fps]
            fps[stage] = fingerprint(stage, upstream, *_BY_NAME[stage].inputs(self))
        return fps

    def stage_outputs(self, stage: str) -> list[Path]:
        # A model folder is complete once its config is written (it is written atomically).
        return [getattr(self.paths, key) / ("config.json" if key in MODEL_DIRS else "") for key in _BY_NAME[stage].writes]

    def is_done(self, stage: str, fp: str) -> bool:
        recorded = _read_marker(self.paths.marker(stage))
        return recorded is not None and recorded.get("fingerprint") == fp and all(p.exists() for p in self.stage_outputs(stage))

    def status(self) -> dict[str, str]:
        fps = self.fingerprints()
        states = {stage: "done" if self.is_done(stage, fps[stage]) else "pending" for stage in self.stages}
        note = self.feedback_source.status_note(self) if states.get("feedback") == "pending" else None
        if note:
            states["feedback"] = f"pending: {note}"
        return states

    def replacing(self, stage: str) -> None:
        """Call just before a stage overwrites its outputs: its marker no longer describes them.

        Later markers may stay: their fingerprints chain on this stage's, so they only match again
        if this stage reproduces the outputs they were computed from. A stage that fails before
        writing (bad input, say) leaves the directory exactly as it was.
        """
        self.paths.marker(stage).unlink(missing_ok=True)

    # ----- sharing between the runs of a study -------------------------------------------------

    def _shared_dir(self, stage: str, fp: str) -> Path | None:
        return self.shared / f"{stage}-{fp}" if self.shared is not None else None

    def _adopt_shared(self, stage: str, fp: str) -> dict[str, Any] | None:
        """Link a stage's outputs published by another run with the same fingerprint."""
        source = self._shared_dir(stage, fp)
        if source is None:
            return None
        marker = _read_marker(source / "marker.json")
        if marker is None or marker.get("fingerprint") != fp:
            return None
        self.replacing(stage)
        for key in _BY_NAME[stage].writes:
            _link(source / FILES[key], getattr(self.paths, key))
        atomic_write_json(self.paths.marker(stage), {**marker, "shared_from": str(source)})
        return {"shared_from": str(source)}

    def _shared_lock(self, stage: str, fp: str) -> Path:
        target = self._shared_dir(stage, fp)
        assert target is not None
        return target.with_name(f".{target.name}.lock")

    def _publish_shared(self, stage: str, fp: str, locked: bool = False) -> None:
        target = self._shared_dir(stage, fp)
        if target is None or (target / "marker.json").exists():
            return
        if not locked:
            with DirectoryLock(self._shared_lock(stage, fp), wait=True):
                return self._publish_shared(stage, fp, locked=True)
        if (target / "marker.json").exists():
            return
        with atomic_directory(target) as tmp:
            for key in _BY_NAME[stage].writes:
                _link(getattr(self.paths, key), tmp / FILES[key])
            shutil.copy2(self.paths.marker(stage), tmp / "marker.json")

    def _compute(self, stage: str, fp: str) -> dict[str, Any]:
        """Run one stage and record its marker; what it computed is then this run's."""
        log.info("stage %s: running", stage)
        started = dt.datetime.now(dt.timezone.utc)
        peak = StagePeak().start()
        try:
            summary = _BY_NAME[stage].run(self, fp)
        except ModelLoadError as err:
            raise ModelLoadError(self._name_model_key(str(err))) from err
        finished = dt.datetime.now(dt.timezone.utc)
        memory = peak.result()
        log.info("stage %s: done in %.1f s, %s", stage, (finished - started).total_seconds(), describe_peak(memory))
        atomic_write_json(
            self.paths.marker(stage),
            {
                "stage": stage,
                "fingerprint": fp,
                "started": started.isoformat(),
                "finished": finished.isoformat(),
                "peak_memory": memory,
                "summary": summary,
            },
        )
        for old in (self.paths.state / "partial").glob(f"{stage}*-*.jsonl"):
            old.unlink(missing_ok=True)
        return summary

    def _name_model_key(self, message: str) -> str:
        """Name the config key of a model that failed to load (the loader knows only the name)."""
        prefix, _, rest = message.partition(": cannot load model ")
        name = rest.split("'")[1] if rest.count("'") >= 2 else None
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
                self.feedback_source.prepare(self)
            if "select" in self.stages[: last + 1]:
                for cls in self.selector_classes():
                    cls.prepare(self)
            fps = self.fingerprints()
            summaries: dict[str, Any] = {}
            for index, stage in enumerate(self.stages[: last + 1]):
                if index < forced and self.is_done(stage, fps[stage]):
                    log.debug("stage %s: up to date, skipped", stage)
                    summaries[stage] = "skipped"
                    continue
                if index < forced and self.shared is not None:
                    # a cell running beside this one may be computing the same stage: wait for it and link its result
                    with DirectoryLock(self._shared_lock(stage, fps[stage]), wait=True):
                        if self._adopt_shared(stage, fps[stage]) is not None:
                            log.debug("stage %s: shared with an earlier run", stage)
                            summaries[stage] = "shared"
                            continue
                        summary = self._compute(stage, fps[stage])
                        self._publish_shared(stage, fps[stage], locked=True)
                else:
                    summary = self._compute(stage, fps[stage])
                    self._publish_shared(stage, fps[stage])
                # Recorded once a stage has succeeded, so a run that fails on bad input leaves the
                # directory describing the last run that worked.
                atomic_write_text(self.paths.config, dump_config(self.config))
                summaries[stage] = summary
            atomic_write_text(self.paths.config, dump_config(self.config))
            return summaries


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


__all__ = ["Pipeline", "STAGES", "STAGE_TABLE", "RunPaths"]
