"""The ranking-RLHF methods, on the same samples and evaluation as ILF:

    rm_best_of_n   the policy as it is, keeping the reward model's favourite of reward.best_of_n samples
    dpo            DPO on the comparisons (TRL DPOTrainer, a frozen copy of the policy as reference)
    rloo           online RL against the reward model (TRL RLOOTrainer)
    ilf_best_of_n  the ILF policy with reward-model best-of-N (Scheurer et al. 2023's best system)

Comparisons come from the feedback source (the dataset's A/B judgements, Label Studio pairwise or
ranking projects, the facts world's annotator); the reward model from the reward stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, RunConfig, option
from ilf.files import Journal
from ilf.methods import Method, warn_if_lora_unused
from ilf.methods.supervised import ILF
from ilf.records import Output, Sample
from ilf.registry import METHODS

if TYPE_CHECKING:
    from ilf.view import RunView


def best_of_n_outputs(run: RunView, model: ModelConfig, samples: list[Sample], system: str) -> tuple[list[Output], dict[str, Any]]:
    from ilf.best_of_n import best_of_n  # torch: only when it generates
    from ilf.train.reward import RewardModel

    reward = RewardModel.load(run.paths.reward_model, batch_size=run.config.reward.score_batch_size)
    n = run.config.reward.best_of_n
    result = best_of_n(model, reward, run.task, samples, n, run.config.outputs.sampling, run.config.seed, system)
    return result.outputs, {"n": len(samples), "best_of_n": n}


@METHODS.register("rm_best_of_n", help="The policy untrained, keeping the reward model's favourite of reward.best_of_n samples.")
class RewardBestOfN(Method):
    trains = False

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        return ("comparisons", "reward")

    def learns_from_samples(self, config: RunConfig) -> bool:
        return True  # its reward model learned from the training samples' comparisons

    def systems(self, run: RunView) -> dict[str, ModelConfig]:
        return {"best_of_n": run.policy}

    def generate(
        self, run: RunView, model: ModelConfig, samples: list[Sample], system: str, journal: Journal | None = None
    ) -> tuple[list[Output], dict[str, Any]]:
        return best_of_n_outputs(run, model, samples, system)


@METHODS.register("ilf_best_of_n", help="The ILF policy with reward-model best-of-N (the published best combination).")
class ILFBestOfN(ILF):
    def stages(self, config: RunConfig) -> tuple[str, ...]:
        return (*super().stages(config), "comparisons", "reward")

    def train_after(self, config: RunConfig) -> tuple[str, ...]:
        return super().stages(config)  # trained exactly as ilf is: a study trains it once for both

    def generate(
        self, run: RunView, model: ModelConfig, samples: list[Sample], system: str, journal: Journal | None = None
    ) -> tuple[list[Output], dict[str, Any]]:
        if system == "base":
            return super().generate(run, model, samples, system, journal)
        return best_of_n_outputs(run, model, samples, system)


@dataclass
class DPOOptions:
    learning_rate: float = option(5e-7, "Peak learning rate.")
    beta: float = option(0.1, "KL strength.")
    num_train_epochs: float = option(1.0, "Epochs over the comparisons.")
    per_device_train_batch_size: int = option(8, "Pairs per batch.")


@METHODS.register("dpo", help="DPO on the comparisons (method_options.dpo), from the policy with a frozen reference copy.")
class DPO(Method):
    Options = DPOOptions
    moved = {"dpo": "{options}"}

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        return ("comparisons",)

    def train(self, run: RunView) -> dict[str, Any]:
        from ilf.train.preference import DPOTrainingConfig, dpo_pairs, train_dpo  # torch: only when it trains

        c, options = run.config, self.options(run.config)
        warn_if_lora_unused(c, self.name)
        return train_dpo(
            run.policy,
            dpo_pairs(run.task, run.training_samples(), run.comparisons()),
            DPOTrainingConfig(
                learning_rate=options.learning_rate,
                beta=options.beta,
                num_train_epochs=options.num_train_epochs,
                per_device_train_batch_size=options.per_device_train_batch_size,
                max_length=c.finetune.max_length,
                seed=c.seed,
            ),
            run.paths.model,
        )


@dataclass
class RLOOOptions:
    max_steps: int = option(200, "Optimizer steps.")
    learning_rate: float = option(1e-6, "Peak learning rate.")
    num_generations: int = option(4, "Samples per prompt (the leave-one-out baseline needs at least 2).")
    per_device_train_batch_size: int = option(8, "Prompts per batch.")


@METHODS.register("rloo", help="Online RL (RLOO) against the reward model (method_options.rloo), sampling like outputs.sampling.")
class RLOO(Method):
    Options = RLOOOptions
    moved = {"rloo": "{options}"}

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        return ("comparisons", "reward")

    def train(self, run: RunView) -> dict[str, Any]:
        from ilf.train.online import RLOOTrainingConfig, train_rloo  # torch: only when it trains

        c, options = run.config, self.options(run.config)
        warn_if_lora_unused(c, self.name)
        return train_rloo(
            run.policy,
            [run.task.initial_prompt(s) for s in run.training_samples()],
            run.paths.reward_model,
            RLOOTrainingConfig(
                learning_rate=options.learning_rate,
                num_generations=options.num_generations,
                max_completion_length=c.outputs.sampling.max_new_tokens,
                per_device_train_batch_size=options.per_device_train_batch_size,
                max_steps=options.max_steps,
                temperature=c.outputs.sampling.temperature,
                seed=c.seed,
            ),
            run.paths.model,
        )
