"""Pick the refinement a trained reward model scores highest (an ablation beside the feedback-
based selectors: it judges quality, not whether the feedback was followed)."""

from __future__ import annotations

from typing import Any

from ilf.selection.base import SelectionItem, Selector
from ilf.train.reward import RewardModel


class RewardModelSelector(Selector):
    name = "reward_model"

    def __init__(self, reward_model: RewardModel, task: Any) -> None:
        if task is None:
            raise ValueError("the reward_model selector needs the task, to build the texts the reward model was trained on")
        self.reward_model = reward_model
        self.task = task

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        return self.reward_model.score_completions(self.task, [item.sample for item in items], [item.candidates for item in items])
