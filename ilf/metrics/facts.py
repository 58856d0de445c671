"""The facts world's exact scores: salient facts stated (recall), stated facts salient (precision),
stated facts true to the post (faithful)."""

from __future__ import annotations

from typing import Any

from ilf.demo import world
from ilf.evaluation import mean_and_sem
from ilf.metrics import Metric
from ilf.records import Output, Sample
from ilf.registry import METRICS


@METRICS.register(
    "facts",
    help="Facts world: recall (salient facts stated exactly), precision (stated facts salient), faithful (stated facts true), "
    "facts stated; ± SEM.",
)
class FactScores(Metric):
    columns = ("recall", "precision", "faithful", "facts_stated")

    def score_outputs(self, run: Any, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        scores = [world.score_summary(world.post_from_sample(s), o.text) for s, o in zip(samples, outputs)]
        result: dict[str, Any] = {}
        for key, values in (
            ("recall", [x.recall for x in scores]),
            ("precision", [x.precision for x in scores]),
            ("faithful", [x.faithful for x in scores]),
            ("facts_stated", [float(x.stated) for x in scores]),
        ):
            result[key], result[f"{key}_sem"] = mean_and_sem(values)
        return result
