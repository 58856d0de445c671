"""Pick a candidate at random: the ablation that tells whether selection matters at all.

Scores are uniform draws seeded by (seed, sample id, feedback), so a resumed or repeated run picks
the same candidate.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from ilf.config import RunConfig, option
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector


@dataclass
class RandomOptions:
    seed: int = option(0, "Seed of the picks (with the sample's id and feedback).")


@SELECTORS.register("random", help="A seeded random pick (selection_options.random.seed): the baseline every selector must beat.")
class RandomSelector(Selector):
    reads_feedback = False
    Options = RandomOptions
    moved = {"selection.seed": "{options}.seed"}

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> RandomSelector:
        return cls(cls.options(config).seed)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        scores = []
        for item in items:
            key = f"{self.seed}\0{item.sample.id}\0{item.feedback or ''}".encode()
            rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
            scores.append([rng.random() for _ in item.candidates])
        return scores
