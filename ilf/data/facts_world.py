"""The facts world's posts as samples: seeded, so every run of a seed sees the same posts.

Training posts are drawn per run seed (``data.limit`` of them); held-out posts come from
``world.test_seed``, the same for every run, so runs are compared on one set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.data import SplitData
from ilf.demo import world
from ilf.records import Sample
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig


@LOADERS.register("facts_world", help="Posts of the controlled facts world (ilf demo); data.split train or test, no files.")
def load_facts_world(config: RunConfig, split: str, path: str | None, limit: int | None) -> SplitData:
    if split == config.data.eval_split:
        posts = world.generate_posts(limit or config.world.test_posts, seed=config.world.test_seed, prefix="test")
    else:
        posts = world.generate_posts(limit or 100, seed=1000 + config.seed, prefix=split)
    samples = [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in posts]
    return SplitData(samples=samples)


def _fingerprint_inputs(config: RunConfig) -> list[Any]:
    return [config.seed, config.world.test_posts, config.world.test_seed, config.world.preference]


load_facts_world.fingerprint_inputs = _fingerprint_inputs  # type: ignore[attr-defined]
