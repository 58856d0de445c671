"""Methods: what the policy is trained on, and how its outputs are produced at evaluation.

A method is a plug-in: a module in this package registers a ``Method`` subclass with
``@METHODS.register(name, help=...)`` (``method: mypkg.methods:MyMethod`` for one of your own).
It names the stages it reads (``stages``), trains in the finetune stage (``train``) and says which
systems the evaluate stage generates with (``systems``, ``generate``). ILF, the SFT baselines and
the ranking-RLHF methods are all methods, so one run, one study and one report serve them all.

A method with settings of its own names a dataclass in ``Options``; a config sets them under
``method_options.<name>`` (``method_options: {sdft: {max_steps: 40}}``, see ``ilf.plugin``), so
adding such a method touches no other file. ``feedback_cost`` says how much feedback a method consumed, by kind, so a
study can set methods side by side at equal cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, RunConfig
from ilf.files import Journal
from ilf.plugin import Plugin
from ilf.records import Feedback, Output, Refinements, Sample, read_records
from ilf.registry import METHODS, SELECTORS
from ilf.steps import evaluation_outputs

if TYPE_CHECKING:
    from ilf.view import RunView


# What a method's training cannot depend on: how it evaluates, which stages it names, how it is
# registered. Everything else a class defines is its training (``training_code``).
_NOT_TRAINING = frozenset(
    {"systems", "generate", "primary_system", "feedback_cost", "stages", "train_after", "learns_from_samples", "configure"}
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

    def feedback_cost(self, run: RunView) -> dict[str, int]:
        """The feedback this method consumed, by kind (critiques, comparisons, references, judgements,
        executions): by default what the stages it reads hold for the training samples."""
        stages = self.stages(run.config)
        ids = {s.id for s in run.training_samples()}
        cost: dict[str, int] = {}
        if "feedback" in stages:
            count = sum(1 for f in read_records(run.paths.feedback, Feedback) if f.sample_id in ids)
            cost[run.feedback_source.critique_unit] = count
        if "comparisons" in stages:
            cost["comparisons"] = len(run.comparisons())
        for kind, count in self.selection_cost(run).items():
            cost[kind] = cost.get(kind, 0) + count
        return cost

    def selection_cost(self, run: RunView) -> dict[str, int]:
        """What the select stage's selector consumed where it is feedback of its own (``cost_unit``):
        the unit_tests selector runs every candidate of the training samples against their tests."""
        if "select" not in self.stages(run.config) or not run.paths.refinements.exists():
            return {}
        unit = SELECTORS.get(run.config.selection.method).cost_unit
        if unit is None:
            return {}
        ids = {s.id for s in run.training_samples()}
        return {unit: sum(len(r.candidates) for r in read_records(run.paths.refinements, Refinements) if r.sample_id in ids)}

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


def get_method(name: str, config: RunConfig | None = None) -> Method:
    """The method ``name`` names, built for ``config`` (the defaults when none is given)."""
    from ilf.config import RunConfig

    return METHODS.get(name).from_config(config if config is not None else RunConfig(method=name))


__all__ = ["Method", "get_method", "keep_policy"]
