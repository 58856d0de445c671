"""Methods: what the policy is trained on, and how its outputs are produced at evaluation.

A method is a plug-in: a module in this package registers a ``Method`` subclass with
``@METHODS.register(name, help=...)`` (``method: mypkg.methods:MyMethod`` for one of your own).
It names the stages it reads (``stages``), trains in the finetune stage (``train``) and says which
systems the evaluate stage generates with (``systems``, ``generate``). ILF, the SFT baselines and
the ranking-RLHF methods are all methods, so one run, one study and one report serve them all.

A method with settings of its own names a dataclass in ``Options``; a config sets them under
``method_options.<name>`` (``method_options: {sdft: {max_steps: 40}}``, see ``ilf.plugin``), so
adding such a method touches no other file. ``feedback_asked`` lists the questions its training's
feedback asked a person, each priced in annotator-seconds (``ilf.costs``): the round's cost
metrics and a study's equal budgets (``study.budgets``) both come from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, RunConfig
from ilf.files import Journal
from ilf.plugin import Plugin
from ilf.records import Comparison, Feedback, Output, Refinements, Sample, Selection, read_records
from ilf.registry import METHODS, SELECTORS
from ilf.steps import evaluation_outputs

if TYPE_CHECKING:
    from ilf.costs import Asked
    from ilf.view import RunView


# What a method's training cannot depend on: how it evaluates, which stages it names, how it is
# registered. Everything else a class defines is its training (``training_code``).
_NOT_TRAINING = frozenset(
    {"systems", "generate", "primary_system", "feedback_cost", "stages", "train_after", "learns_from_samples", "configure"}
    | {"seconds_per_sample", "at_budget", "selection_asked", "sample_seconds", "feedback_asked", "trained_feedback", "spent"}
    | {"name", "options_key", "moved", "Options", "options", "from_config", "training_code"}
)


class Method(Plugin):
    trains: bool = True

    @classmethod
    def training_code(cls) -> str:
        """A digest of the code and class settings its training runs (each function's module and
        name, and for a module of one's own its source), so two methods that train alike (``ilf``
        and ``ilf_best_of_n``) share a trained model and one that trains otherwise does not."""
        import hashlib
        import inspect

        from ilf import reads

        parts = []
        for attr in sorted(dir(cls)):
            if attr.startswith("__") or attr in _NOT_TRAINING:
                continue
            value = inspect.getattr_static(cls, attr)
            function = getattr(value, "__func__", value)
            if inspect.isfunction(function):
                parts.append(f"{attr}={reads.plugin_identity(function, attr)}")
            elif not isinstance(value, property):
                parts.append(f"{attr}={value!r}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def configure(self, config: RunConfig) -> RunConfig:
        """The config with the keys this method fixes set (``sft_initial`` sets finetune.target)."""
        return config

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        """The stages the method reads, besides data and evaluate (finetune is added when it trains)."""
        return ()

    def learns_from_samples(self, config: RunConfig) -> bool:
        """Whether what it evaluates depends on how many training samples it had: a study gives it a
        cell per training size (a method that trains does; so does one whose reward model learned)."""
        return self.trains

    def train_after(self, config: RunConfig) -> tuple[str, ...]:
        """The stages training reads: a change in any of them retrains."""
        return tuple(s for s in self.stages(config) if s != "finetune")

    def feedback_asked(self, run: RunView, samples: list[Sample]) -> list[Asked]:
        """The questions these samples' feedback asked a person, each priced (``ilf.costs``), as the
        stages this method reads hold them: a critique per feedback record, the distinct pairs
        compared (or one ranking), and what the selector asks of its own. One list serves the
        round's cost metrics (``spent``) and a budget's choice of samples (``sample_seconds``)."""
        from ilf.costs import asked, comparisons_asked

        stages = self.stages(run.config)
        ids = {s.id for s in samples}
        cost = run.config.cost
        items: list[Asked] = []
        if "feedback" in stages:
            unit = run.feedback_source.critique_unit
            items += [asked(f.sample_id, unit, cost, f) for f in read_records(run.paths.feedback, Feedback) if f.sample_id in ids]
        if "comparisons" in stages and run.paths.comparisons.exists():
            items += comparisons_asked([c for c in read_records(run.paths.comparisons, Comparison) if c.sample_id in ids], cost)
        return items + self.selection_asked(run, samples)

    def selection_asked(self, run: RunView, samples: list[Sample]) -> list[Asked]:
        """What the select stage's selector asked of its own: the unit_tests selector runs every
        candidate against its tests; people's picks in Label Studio cost a pick each."""
        if "select" not in self.stages(run.config) or not run.paths.refinements.exists():
            return []
        ids = {s.id for s in samples}
        refinements = [r for r in read_records(run.paths.refinements, Refinements) if r.sample_id in ids]
        selections = [s for s in read_records(run.paths.selected, Selection) if s.sample_id in ids] if run.paths.selected.exists() else []
        return SELECTORS.get(run.config.selection.method).feedback_asked(refinements, selections, run.config.cost)

    def trained_feedback(self, run: RunView) -> dict[str, int]:
        """Questions asked while training, by kind, that belong to no one sample (SDPO's judgements of its rollouts)."""
        return {}

    def spent(self, run: RunView) -> dict[str, float]:
        """The round's cost metrics: what the training samples' feedback asked, counted alike for
        every method (each question a person answered once), and its annotator-seconds."""
        from ilf.costs import summarise

        return summarise(self.feedback_asked(run, run.training_samples()), self.trained_feedback(run), run.config.cost)

    def feedback_cost(self, run: RunView) -> dict[str, int]:
        """The feedback this method's training read: questions answered, by kind."""
        return {k[len("cost.") :]: int(v) for k, v in self.spent(run).items() if k.startswith("cost.")}

    def seconds_per_sample(self, config: RunConfig) -> float:
        """What one more training sample is planned to cost this method in annotator-seconds, before
        anything ran (``at_budget`` checks ``data.limit`` by it): a critique where it reads the
        feedback stage, the comparisons the feedback source asks per sample, what the selector asks."""
        from ilf.costs import price
        from ilf.registry import FEEDBACK_SOURCES

        stages = self.stages(config)
        source = FEEDBACK_SOURCES.get(config.feedback.source)
        seconds = 0.0
        if "feedback" in stages:
            seconds += price(config.cost, source.critique_unit)
        if "comparisons" in stages:
            seconds += source.comparison_seconds(config)
        if "select" in stages:
            seconds += SELECTORS.get(config.selection.method).seconds_per_sample(config)
        return seconds

    def sample_seconds(self, run: RunView, samples: list[Sample]) -> list[float]:
        """What each sample's feedback cost, from what the round holds (``finetune.budget`` trains on
        the first samples these add up to)."""
        per_sample = dict.fromkeys((s.id for s in samples), 0.0)
        for item in self.feedback_asked(run, samples):
            per_sample[item.sample_id] += item.seconds
        return [per_sample[s.id] for s in samples]

    def at_budget(self, config: RunConfig, seconds: float) -> RunConfig:
        """The config that spends ``seconds`` of annotator time on this method's own kind of feedback
        (``finetune.budget``: the training samples are the first ones it pays for, see ``sample_seconds``)."""
        import dataclasses

        per = self.seconds_per_sample(config)
        if per > 0 and config.data.limit is not None and seconds / per > config.data.limit:
            raise ValueError(
                f"a budget of {seconds:g} annotator-seconds pays for about {seconds / per:.1f} training samples of method "
                f"{config.method!r} ({per:g} s each), more than data.limit {config.data.limit}: raise data.limit"
            )
        return dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, budget=float(seconds)))

    def train(self, run: RunView) -> dict[str, Any]:
        raise NotImplementedError(f"method {run.config.method!r} trains nothing")

    def targets(self, run: RunView) -> dict[str, str] | None:
        """The text each training sample is imitated towards, where the method has one."""
        return None

    def systems(self, run: RunView) -> dict[str, ModelConfig]:
        systems = {"base": run.policy} if run.config.evaluation.include_base else {}
        if self.trains:
            systems["finetuned"] = run.trained(run.paths.model)
        return systems

    def primary_system(self, systems: dict[str, ModelConfig]) -> str:
        """The system a study reports for this method's cell."""
        return "finetuned" if "finetuned" in systems else next(iter(systems))

    def generate(
        self, run: RunView, model: ModelConfig, samples: list[Sample], system: str, journal: Journal | None = None
    ) -> tuple[list[Output], dict[str, Any]]:
        return evaluation_outputs(
            model,
            samples,
            run.task,
            run.config.evaluation.sampling,
            run.config.seed,
            system,
            journal,
            run.config.evaluation.num_samples,
            independent=any(m.independent_samples for m in run.metrics),
        )


def keep_policy(run: RunView, why: str) -> dict[str, Any]:
    """Nothing to train on (a code round whose refinements all fail their tests, say; ``why`` says
    what was missing): the "fine-tuned" model is the policy as it was, saved where training would
    have put it, so the run and its study still evaluate it; the metrics say that nothing was trained."""
    import logging

    from ilf.files import atomic_directory, atomic_write_json
    from ilf.models import load_model, save_model

    logging.getLogger(__name__).warning("finetune: %s; the policy is kept unchanged as the fine-tuned model", why)
    loaded = load_model(run.policy)
    model = loaded.model.merge_and_unload() if hasattr(loaded.model, "merge_and_unload") else loaded.model
    metrics = {"pairs": 0, "steps": 0, "train_loss": None}
    with atomic_directory(run.paths.model) as tmp:
        save_model(model, loaded.tokenizer, tmp)
        atomic_write_json(tmp / "train_metrics.json", metrics)
    return metrics


def warn_if_lora_unused(config: RunConfig, method: str) -> None:
    """``finetune.lora`` configures the SFT methods' trainer; a method that trains every weight
    says so rather than ignore it in silence."""
    import logging

    if config.finetune.lora is not None:
        logging.getLogger(__name__).warning(
            "finetune.lora is set, but the method %r trains every weight: only the SFT methods (ilf, sft_*) train a LoRA adapter", method
        )


def get_method(name: str, config: RunConfig | None = None) -> Method:
    """The method ``name`` names, built for ``config`` (the defaults when none is given)."""
    from ilf.config import RunConfig

    return METHODS.get(name).from_config(config if config is not None else RunConfig(method=name))


__all__ = ["Method", "get_method", "keep_policy", "warn_if_lora_unused"]
