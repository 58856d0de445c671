"""The facts world's score of what a method trains on: recall and precision of its targets."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from ilf.demo import world
from ilf.metrics import Metric
from ilf.registry import METRICS

if TYPE_CHECKING:
    from ilf.view import RunView


@METRICS.register("target_quality", help="Facts world: recall and precision of the method's training targets (its imitation data).")
class TargetQuality(Metric):
    def score_round(self, run: RunView) -> dict[str, Any]:
        targets = run.method.targets(run)
        if not targets:
            return {}
        scores = [world.score_summary(world.post_from_sample(s), targets[s.id]) for s in run.training_samples() if s.id in targets]
        return {
            "targets.recall": statistics.fmean(x.recall for x in scores),
            "targets.precision": statistics.fmean(x.precision for x in scores),
        }
