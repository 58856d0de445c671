"""The facts world's simulated annotator as a feedback source: one simulated person, with one
noise rate, for every channel. It critiques each initial output against the post's facts, compares
pairs of the policy's samples (or ranks them) for the ranking methods, and answers yes/no on the
rollouts of online methods; the noise-free versions are ablations under explicit names
(``comparisons_by: oracle``, ``method_options.sdpo.reward: oracle``)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ilf.config import RunConfig, option
from ilf.costs import price
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
        4, "Policy samples per training sample that the annotator compares (the ranking methods): every pair of the distinct ones."
    )
    ask: Literal["pairs", "ranking"] = option(
        "pairs",
        "How the annotator compares them: pairs, each pair of distinct samples on its own (cost.comparison each); ranking, "
        "one ranking of the distinct samples (cost.ranking per sample ranked), from which every pair follows.",
    )
    comparisons_by: Literal["annotator", "oracle"] = option(
        "annotator",
        "annotator: the annotator's overall preference, with its noise (world.annotator_noise: half of the noisy answers "
        "wrong, half a tie); oracle: the world's noise-free, finely graded key (an ablation: no person gives it).",
    )


@FEEDBACK_SOURCES.register(
    "simulated",
    help="The facts world's annotator: critiques of wrong, missing or superfluous facts, "
    "world.annotator_noise of them unhelpful or misleading (in the hidden world some also state what it cares about); "
    "also compares or ranks outputs and answers yes/no on rollouts, with the same noise (feedback_options.simulated).",
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

    @classmethod
    def comparison_seconds(cls, config: RunConfig) -> float:
        options: SimulatedOptions = cls.options(config)
        k = options.comparisons_per_sample
        if options.ask == "ranking":
            return k * price(config.cost, "rankings")
        return math.comb(k, 2) * price(config.cost, "comparisons")

    def compare(self, run: RunView, journal_key: str) -> list[Comparison]:
        """The annotator's judgements of ``feedback_options.simulated.comparisons_per_sample`` policy
        samples of each training sample: every pair of the distinct ones, asked one by one or read off
        one ranking (``ask``); identical samples are never shown side by side."""
        samples = run.samples()
        options: SimulatedOptions = self.options(run.config)
        generated, _ = generate_outputs(
            run.outputs_model,
            run.task,
            [run.task.initial_prompt(s) for s in samples],
            options.comparisons_per_sample,
            run.config.outputs.sampling,
            run.config.seed + 17,
            desc="samples to compare",
        )
        annotator = world_annotator(run.config, offset=1)
        comparisons = []
        for index, sample in enumerate(samples):
            post = world.post_from_sample(sample)
            shown = list(dict.fromkeys(generated[index]))
            pairs = list(itertools.combinations(range(len(shown)), 2))
            extra: dict[str, object] = {}
            if options.comparisons_by == "oracle":
                verdicts = [world.oracle_preference(post, shown[i], shown[j]) for i, j in pairs]
            elif options.ask == "ranking" and len(shown) > 1:
                answer = annotator.ranking(post, shown, key=sample.id)
                ranks = list(answer.value)  # type: ignore[call-overload]
                verdicts = ["a" if ranks[i] < ranks[j] else "b" if ranks[j] < ranks[i] else "tie" for i, j in pairs]
                extra = {"ranking": sample.id, "ranked": len(shown), "error": answer.error}
            else:
                answers = [annotator.comparison(post, shown[i], shown[j], key=sample.id) for i, j in pairs]
                verdicts = [str(a.value) for a in answers]
            for (i, j), verdict in zip(pairs, verdicts):
                comparisons.append(
                    Comparison(
                        sample_id=sample.id,
                        a=shown[i],
                        b=shown[j],
                        preferred=verdict,
                        annotator="oracle" if options.comparisons_by == "oracle" else "simulated",
                        source="facts-world",
                        extra=dict(extra),
                    )
                )
        return comparisons
