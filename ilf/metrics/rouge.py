"""ROUGE-1/2/L F1 against the references (best-matching one), and the length in words."""

from __future__ import annotations

from typing import Any

from ilf.evaluation import summarize_outputs
from ilf.metrics import Metric
from ilf.records import Output, Sample
from ilf.registry import METRICS


@METRICS.register("rouge", help="ROUGE-1/2/L F1 against the references (rouge-score, stemmed) ± SEM, and the mean length in words.")
class Rouge(Metric):
    columns = ("rouge1", "rouge2", "rougeL", "mean_words")

    def score_outputs(self, run: Any, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        return summarize_outputs([o.text for o in outputs], [s.references for s in samples])
