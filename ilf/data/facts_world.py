"""The facts world's posts as samples: seeded, so every run of a seed sees the same posts.

Training posts are drawn per run seed (``data.limit`` of them); held-out posts come from
``world.test_seed``, the same for every run, so runs are compared on one set. Two held-out splits
are drawn apart: ``test``, which studies report, and ``validation``, which tuning evaluates on
(``data.eval_split: validation``), so no setting is chosen on the posts it is reported on. In the hidden world
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


HELD_OUT = ("test", "validation")


@LOADERS.register(
    "facts_world",
    help="Posts of the controlled facts world (ilf demo); data.split train, data.eval_split test (reported) or validation "
    "(for tuning), no files.",
)
def load_facts_world(config: RunConfig, split: str, path: str | None, limit: int | None) -> SplitData:
    rule = hidden_rule(config)
    if split in HELD_OUT or split == config.data.eval_split:
        prefix = split if split in HELD_OUT else "test"
        posts = world.generate_posts(limit or config.world.test_posts, seed=config.world.test_seed, prefix=prefix, rule=rule)
    else:
        posts = world.generate_posts(limit or 100, seed=1000 + config.seed, prefix=split, rule=rule)
    samples = [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in posts]
    return SplitData(samples=samples, origin=f"the facts world ({split} posts)")


def hidden_rule(config: RunConfig) -> world.Rule | None:
    """The annotator's rule of this run's seed in the hidden world; None in the cued world."""
    w = config.world
    return world.Rule.draw(config.seed, w.rule, w.rule_size) if w.preference == "hidden" else None


load_facts_world.pretrained_model = models.pretrained_model  # type: ignore[attr-defined]  # what `pretrained` names
