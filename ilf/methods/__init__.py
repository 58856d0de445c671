"""Methods: what the policy is trained on, and how its outputs are produced at evaluation.

A method is a plug-in: a module in this package registers a ``Method`` subclass with
``@METHODS.register(name, help=...)`` (``method: mypkg.methods:MyMethod`` for one of your own).
It names the stages it reads (``stages``), trains in the finetune stage (``train``) and says which
systems the evaluate stage generates with (``systems``, ``generate``). ILF, the SFT baselines and
the ranking-RLHF methods are all methods, so one run, one study and one report serve them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, RunConfig
from ilf.files import Journal
from ilf.records import Output, Sample
from ilf.registry import METHODS
from ilf.steps import evaluation_outputs

if TYPE_CHECKING:
    from ilf.pipeline import Pipeline


class Method:
    trains: bool = True

    def configure(self, config: RunConfig) -> RunConfig:
        """The config with the keys this method fixes set (``sft_initial`` sets finetune.target)."""
        return config

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        """The stages the method reads, besides data and evaluate (finetune is added when it trains)."""
        return ()

    def train_after(self, config: RunConfig) -> tuple[str, ...]:
        """The stages training reads: a change in any of them retrains."""
        return tuple(s for s in self.stages(config) if s != "finetune")

    def fingerprint_inputs(self, config: RunConfig) -> list[Any]:
        """What identifies the training beyond finetune.*: two methods that train alike share it."""
        return [type(self).__name__]

    def train(self, run: Pipeline) -> dict[str, Any]:
        raise NotImplementedError(f"method {run.config.method!r} trains nothing")

    def targets(self, run: Pipeline) -> dict[str, str] | None:
        """The text each training sample is imitated towards, where the method has one."""
        return None

    def systems(self, run: Pipeline) -> dict[str, ModelConfig]:
        systems = {"base": run.policy} if run.config.evaluation.include_base else {}
        if self.trains:
            systems["finetuned"] = run.trained(run.paths.model)
        return systems

    def primary_system(self, systems: dict[str, ModelConfig]) -> str:
        """The system a study reports for this method's cell."""
        return "finetuned" if "finetuned" in systems else next(iter(systems))

    def generate(
        self, run: Pipeline, model: ModelConfig, samples: list[Sample], system: str, journal: Journal | None = None
    ) -> tuple[list[Output], dict[str, Any]]:
        return evaluation_outputs(
            model, samples, run.task, run.config.evaluation.sampling, run.config.seed, system, journal, run.config.evaluation.num_samples
        )


def get_method(name: str) -> Method:
    return METHODS.get(name)()


__all__ = ["Method", "get_method"]
