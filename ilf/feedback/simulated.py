"""The facts world's simulated annotator as a feedback source: it critiques each initial output
against the post's facts, and compares pairs of the policy's samples for the ranking methods."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ilf.config import RunConfig, option
from ilf.demo import world
from ilf.feedback import FeedbackSource
from ilf.generate import generate_outputs
from ilf.records import Comparison, Feedback, Output, Sample, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


def world_annotator(config: RunConfig, offset: int = 0) -> world.Annotator:
    """The run's simulated annotator: the world's preference and noise, seeded by the run."""
    w = config.world
    hidden = w.preference == "hidden"
    return world.Annotator(
        noise=w.annotator_noise,
        seed=1000 + config.seed + offset,
        state_preference=w.state_preference if hidden else 0.0,
        preference_slot=w.rule if hidden else "name",
    )


@dataclass
class SimulatedOptions:
    comparisons_per_sample: int = option(
        4, "Policy samples per training sample that the annotator compares pairwise (the ranking methods)."
    )


@FEEDBACK_SOURCES.register(
    "simulated",
    help="The facts world's annotator: critiques of wrong, missing or superfluous facts, "
    "world.annotator_noise of them unhelpful or misleading (in the hidden world some also state what it cares about); "
    "also compares pairs of outputs by the same preference.",
)
class SimulatedAnnotator(FeedbackSource):
    Options = SimulatedOptions
    moved = {"feedback.comparisons_per_sample": "{options}.comparisons_per_sample"}

    def collect(self, run: RunView) -> tuple[list[Feedback], str]:
        annotator = world_annotator(run.config)
        by_id = {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
        records = []
        for sample in run.samples():
            output = by_id[sample.id]
            critique = annotator.critique(world.post_from_sample(sample), output)
            records.append(
                Feedback(
                    sample_id=sample.id,
                    text=critique.text,
                    output=output,
                    annotator="simulated",
                    source="facts-world",
                    feedback_class=critique.kind,
                    extra=critique.record(),
                )
            )
        return records, "the simulated annotator"

    def reward(self, run: RunView, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]:
        """The annotator's judgement of each summary, asked "is it fine as it is?": 1.0 yes, 0.0 no,
        with the same noise as its critiques (``world.annotator_noise``; see ``Annotator.judges_fine``)."""
        annotator = world_annotator(run.config, offset=2)
        answers = [annotator.judges_fine(world.post_from_sample(sample), text, key=f"{sample.id}\n{text}") for sample, text in pairs]
        return [1.0 if fine else 0.0 for fine in answers], "judgements"

    def oracle_reward(self, run: RunView, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]:
        """The world's exact score of each summary, noise-free: the F1 of salient facts stated (recall)
        and stated facts salient (precision), the very measures a study reports. For ablations only:
        no person gives it."""
        scores = [world.score_summary(world.post_from_sample(sample), text) for sample, text in pairs]
        f1 = [2 * s.recall * s.precision / (s.recall + s.precision) if s.recall + s.precision else 0.0 for s in scores]
        return f1, "oracle_scores"

    def compare(self, run: RunView, journal_key: str) -> list[Comparison]:
        """The annotator's preference between every pair of ``feedback_options.simulated.comparisons_per_sample``
        distinct policy samples of each training sample."""
        samples = run.samples()
        per_sample = self.options(run.config).comparisons_per_sample
        generated, _ = generate_outputs(
            run.outputs_model,
            run.task,
            [run.task.initial_prompt(s) for s in samples],
            per_sample,
            run.config.outputs.sampling,
            run.config.seed + 17,
            desc="samples to compare",
        )
        annotator = world_annotator(run.config, offset=1)
        comparisons = []
        for index, sample in enumerate(samples):
            post = world.post_from_sample(sample)
            for a, b in itertools.combinations(dict.fromkeys(generated[index]), 2):
                comparisons.append(
                    Comparison(
                        sample_id=sample.id, a=a, b=b, preferred=annotator.prefers(post, a, b), annotator="simulated", source="facts-world"
                    )
                )
        return comparisons
