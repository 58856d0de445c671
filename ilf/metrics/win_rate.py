"""Win rate against the references as a reward model judges them (a tie counts one half).

The reward model is the run's own (the reward stage, trained on the comparisons), so every
method of a study seed is judged by the same model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ilf.evaluation import mean_and_sem
from ilf.metrics import Metric
from ilf.records import Output, Sample
from ilf.registry import METRICS
from ilf.train.reward import RewardModel

if TYPE_CHECKING:
    from ilf.view import RunView


def win_rate(scores: list[float], references: list[float]) -> tuple[float, float]:
    """Share (and its standard error) of samples whose score beats the reference's; a tie counts half."""
    return mean_and_sem([1.0 if m > r else 0.5 if m == r else 0.0 for m, r in zip(scores, references)])


@METRICS.register(
    "win_rate", help="Win rate against the first reference, judged by the run's reward model (trained on the comparisons) ± SEM."
)
class RewardWinRate(Metric):
    columns = ("win_rate",)
    needs = ("reward",)

    def __init__(self) -> None:
        self._reward: Any = None
        self._references: dict[str, float] = {}

    def _model(self, run: RunView) -> Any:
        if self._reward is None:
            self._reward = RewardModel.load(run.paths.reward_model, batch_size=run.config.reward.score_batch_size)
        return self._reward

    def score_outputs(self, run: RunView | None, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        if run is None:
            raise ValueError("evaluation.metrics: win_rate needs a run's reward model; use it in `ilf run` or `ilf study`")
        model = self._model(run)
        scored = [s for s in samples if s.references]
        missing = [s for s in scored if s.id not in self._references]
        if missing:
            rows = model.score_completions(run.task, missing, [[s.references[0]] for s in missing])
            self._references.update({s.id: row[0] for s, row in zip(missing, rows)})
        by_id = {o.sample_id: o.text for o in outputs}
        mine = [row[0] for row in model.score_completions(run.task, scored, [[by_id[s.id]] for s in scored])]
        rate, sem = win_rate(mine, [self._references[s.id] for s in scored])
        return {"win_rate": rate, "win_rate_sem": sem}

    def score_round(self, run: RunView) -> dict[str, Any]:
        metrics = json.loads((run.paths.reward_model / "reward_metrics.json").read_text())
        return {f"reward.{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
