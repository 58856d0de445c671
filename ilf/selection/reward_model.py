"""Pick the refinement a trained reward model scores highest (an ablation beside the feedback-
based selectors: it judges quality, not whether the feedback was followed)."""

from __future__ import annotations

from typing import Any

from ilf.config import ModelConfig, SelectionConfig
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector
from ilf.train.reward import RewardModel


@SELECTORS.register("reward_model", help="The score of a trained reward model (selection.reward_model: its path).")
class RewardModelSelector(Selector):
    name = "reward_model"
    reads_feedback = False

    @classmethod
    def from_config(cls, config: SelectionConfig, judge: ModelConfig, task: Any) -> RewardModelSelector:
        if not config.reward_model:
            raise ValueError("selection.reward_model: the path of a trained reward model is required for the reward_model selector")
        return cls(RewardModel.load(config.reward_model, batch_size=config.batch_size), task)

    def __init__(self, reward_model: RewardModel, task: Any) -> None:
        if task is None:
            raise ValueError("the reward_model selector needs the task, to build the texts the reward model was trained on")
        self.reward_model = reward_model
        self.task = task

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        return self.reward_model.score_completions(self.task, [item.sample for item in items], [item.candidates for item in items])
