"""Best-of-N sampling: draw N outputs from a policy and keep the one the reward model scores
highest (Scheurer et al. 2023 combine this with the ILF-fine-tuned policy for their best system)."""

from __future__ import annotations

from dataclasses import dataclass

from ilf.config import ModelConfig, SamplingConfig
from ilf.generate import generate_outputs
from ilf.models import LoadedModel
from ilf.records import Output, Sample
from ilf.tasks import Task
from ilf.train.reward import RewardModel


@dataclass
class BestOfN:
    outputs: list[Output]
    candidates: list[list[str]]
    scores: list[list[float]]


def best_of_n(
    policy: ModelConfig | LoadedModel,
    reward_model: RewardModel,
    task: Task,
    samples: list[Sample],
    n: int,
    sampling: SamplingConfig,
    seed: int = 0,
    system: str = "best_of_n",
) -> BestOfN:
    prompts = [task.initial_prompt(s) for s in samples]
    generated, _ = generate_outputs(policy, task, prompts, n, sampling, seed, desc=f"best-of-{n}")
    candidates = [generated[i] for i in range(len(samples))]
    scores = reward_model.score_completions(task, samples, candidates)
    outputs = []
    for sample, texts, row in zip(samples, candidates, scores):
        best = max(range(n), key=row.__getitem__)
        outputs.append(Output(sample_id=sample.id, text=texts[best], system=system, extra={"reward": row[best], "n": n}))
    return BestOfN(outputs=outputs, candidates=candidates, scores=scores)


__all__ = ["BestOfN", "best_of_n"]
