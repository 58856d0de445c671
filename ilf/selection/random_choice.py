"""Pick a candidate at random: the ablation that tells whether selection matters at all.

Scores are uniform draws seeded by (seed, sample id, feedback), so a resumed or repeated run picks
the same candidate.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ilf.config import ModelConfig, SelectionConfig
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector


@SELECTORS.register("random", help="A seeded random pick (selection.seed): the baseline every selector must beat.")
class RandomSelector(Selector):
    name = "random"
    reads_feedback = False

    @classmethod
    def from_config(cls, config: SelectionConfig, judge: ModelConfig, task: Any) -> RandomSelector:
        return cls(config.seed)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        scores = []
        for item in items:
            key = f"{self.seed}\0{item.sample.id}\0{item.feedback or ''}".encode()
            rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
            scores.append([rng.random() for _ in item.candidates])
        return scores
