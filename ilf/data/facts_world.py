"""The facts world's posts as samples: seeded, so every run of a seed sees the same posts.

Training posts are drawn per run seed (``data.limit`` of them); held-out posts come from
``world.test_seed``, the same for every run, so runs are compared on one set. In the hidden world
the annotator's rule is drawn from the run seed too, and every post is built under it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilf.data import SplitData
from ilf.demo import models, world
from ilf.records import Sample
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig


@LOADERS.register("facts_world", help="Posts of the controlled facts world (ilf demo); data.split train or test, no files.")
def load_facts_world(config: RunConfig, split: str, path: str | None, limit: int | None) -> SplitData:
    rule = hidden_rule(config)
    if split == config.data.eval_split:
        posts = world.generate_posts(limit or config.world.test_posts, seed=config.world.test_seed, prefix="test", rule=rule)
    else:
        posts = world.generate_posts(limit or 100, seed=1000 + config.seed, prefix=split, rule=rule)
    samples = [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in posts]
    return SplitData(samples=samples)


def hidden_rule(config: RunConfig) -> world.Rule | None:
    """The annotator's rule of this run's seed in the hidden world; None in the cued world."""
    w = config.world
    return world.Rule.draw(config.seed, w.rule, w.rule_size) if w.preference == "hidden" else None


load_facts_world.pretrained_model = models.pretrained_model  # type: ignore[attr-defined]  # what `pretrained` names
