"""Pick the refinement a trained reward model scores highest (an ablation beside the feedback-
based selectors: it judges quality, not whether the feedback was followed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ilf.config import RunConfig, option
from ilf.plugin import run_task
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector
from ilf.train.reward import RewardModel


@dataclass
class RewardModelOptions:
    path: str | None = option(None, "The folder of a trained reward model (a run's reward_model/); required.", path=True)


@SELECTORS.register("reward_model", help="The score of a trained reward model (selection_options.reward_model.path).")
class RewardModelSelector(Selector):
    reads_feedback = False
    Options = RewardModelOptions
    moved = {"selection.reward_model": "{options}.path"}

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> RewardModelSelector:
        path = cls.options(config).path
        if not path:
            raise ValueError(
                "selection_options.reward_model.path: the folder of a trained reward model is required for the reward_model selector"
            )
        return cls(RewardModel.load(path, batch_size=config.selection.batch_size), run_task(config, task))

    def __init__(self, reward_model: RewardModel, task: Any) -> None:
        if task is None:
            raise ValueError("the reward_model selector needs the task, to build the texts the reward model was trained on")
        self.reward_model = reward_model
        self.task = task

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        return self.reward_model.score_completions(self.task, [item.sample for item in items], [item.candidates for item in items])
