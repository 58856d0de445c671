"""The steps of one ILF round as functions from records to records.

The pipeline runs them over a run directory; the per-stage commands run them over files given on
the command line. Generation steps take an optional journal so a killed run resumes where it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, RefineConfig, RunConfig, SamplingConfig
from ilf.files import Journal
from ilf.records import Candidate, Feedback, Output, Refinements, Sample, Selection
from ilf.registry import SELECTORS
from ilf.selection import SelectionItem, select
from ilf.tasks import Task

if TYPE_CHECKING:
    from ilf.models import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class Generated:
    texts: list[list[str]]
    stats: dict[str, Any]


def generate_resumable(
    lm_config: ModelConfig | LoadedModel,
    task: Task,
    prompts: list[str],
    num_outputs: int,
    sampling: SamplingConfig,
    seed: int,
    journal: Journal | None = None,
    desc: str = "generate",
    resample: bool = True,
) -> Generated:
    """``num_outputs`` outputs per prompt; prompts already in the journal are not generated again."""
    done: dict[int, list[str]] = {}
    if journal is not None:
        for row in journal.recover():
            if isinstance(row.get("i"), int) and len(row.get("texts", [])) == num_outputs and row["i"] < len(prompts):
                done[row["i"]] = row["texts"]
        if done:
            log.info("%s: resuming, %d of %d prompts already done", desc, len(done), len(prompts))
    from ilf.generate import GenerationStats, generate_outputs  # torch: only when something generates

    stats = GenerationStats()
    if len(done) < len(prompts):

        def record(batch: dict[int, list[str]]) -> None:
            if journal is not None:
                journal.append([{"i": i, "texts": texts} for i, texts in sorted(batch.items())])

        results, stats = generate_outputs(
            lm_config, task, prompts, num_outputs, sampling, seed, skip=set(done), on_batch=record, desc=desc, resample=resample
        )
        done.update(results)
    summary = stats.as_dict()
    summary["resumed_prompts"] = len(prompts) - stats.prompts
    return Generated(texts=[done[i] for i in range(len(prompts))], stats=summary)


def initial_outputs(
    samples: list[Sample], task: Task, policy: ModelConfig, sampling: SamplingConfig, seed: int, journal: Journal | None = None
) -> tuple[list[Output], dict[str, Any]]:
    """The output each sample's feedback is about: the dataset's, or one sampled from the policy."""
    missing = [s for s in samples if not s.initial_output]
    generated: dict[str, str] = {}
    stats: dict[str, Any] = {"from_dataset": len(samples) - len(missing), "generated": len(missing)}
    if missing:
        result = generate_resumable(
            policy, task, [task.initial_prompt(s) for s in missing], 1, sampling, seed, journal, desc="initial outputs"
        )
        generated = {s.id: texts[0] for s, texts in zip(missing, result.texts)}
        stats["generation"] = result.stats
    outputs = [
        Output(sample_id=s.id, text=s.initial_output or generated[s.id], system="dataset" if s.initial_output else "policy")
        for s in samples
    ]
    return outputs, stats


def refine(
    samples: list[Sample],
    outputs: list[Output],
    feedback: list[Feedback],
    task: Task,
    refiner: ModelConfig | LoadedModel,
    config: RefineConfig,
    seed: int,
    journal: Journal | None = None,
) -> tuple[list[Refinements], dict[str, Any]]:
    """N candidate refinements for each feedback record, conditioned on input, output and feedback."""
    by_id = {s.id: s for s in samples}
    output_by_id = {o.sample_id: o.text for o in outputs}
    prompts = []
    for number, item in enumerate(feedback, start=1):
        sample = by_id.get(item.sample_id)
        if sample is None:
            raise ValueError(f"feedback record {number}: sample_id {item.sample_id!r} is not among the samples")
        output = item.output or output_by_id.get(item.sample_id)
        if output is None:
            raise ValueError(f"feedback record {number}: no output to refine for sample {item.sample_id!r}")
        prompts.append(task.refine_prompt(sample, output, item.text if config.use_feedback else None))
    result = generate_resumable(refiner, task, prompts, config.num_candidates, config.sampling, seed, journal, desc="refine")
    records = [
        Refinements(
            sample_id=item.sample_id,
            candidates=[Candidate(text=t) for t in texts],
            output=item.output or output_by_id.get(item.sample_id),
            feedback=item.text,
            extra={"use_feedback": config.use_feedback},
        )
        for item, texts in zip(feedback, result.texts)
    ]
    return records, result.stats


def select_refinements(
    samples: list[Sample], refinements: list[Refinements], run_config: RunConfig, task: Task | None = None, run: Any = None
) -> tuple[list[Selection], dict[str, Any]]:
    """Every selector's scores of each sample's candidates and the picking selector's pick; ``run``
    (its ``RunView``), when a run's select stage asks, is shown to each selector first (``use_run``)."""
    config = run_config.selection
    by_id = {s.id: s for s in samples}
    items = []
    for number, record in enumerate(refinements, start=1):
        if record.sample_id not in by_id:
            raise ValueError(f"refinements record {number}: sample_id {record.sample_id!r} is not among the samples")
        if not record.candidates:
            raise ValueError(f"refinements record {number}: no candidates")
        items.append(
            SelectionItem(
                sample=by_id[record.sample_id],
                output=record.output,
                feedback=record.feedback,
                candidates=[c.text for c in record.candidates],
            )
        )
    selections = select(items, run_config, task, run)
    dropped = len(items) - len(selections)
    if dropped:
        log.warning(
            "select: %d of %d samples have no acceptable candidate for %s and are left out of fine-tuning",
            dropped,
            len(items),
            config.method,
        )
    picked_first = sum(1 for s in selections if s.index == 0)
    stats = {
        "selections": len(selections),
        "method": config.method,
        "picked_first_candidate": picked_first,
        "no_acceptable_candidate": dropped,
    }
    for name in dict.fromkeys([config.method, *config.also_score]):
        stats.update(SELECTORS.get(name).summary(selections))
    return selections, stats


def evaluation_outputs(
    model: ModelConfig,
    samples: list[Sample],
    task: Task,
    sampling: SamplingConfig,
    seed: int,
    system: str,
    journal: Journal | None = None,
    num_samples: int = 1,
    independent: bool = False,
) -> tuple[list[Output], dict[str, Any]]:
    """``num_samples`` outputs per held-out sample; the metrics (``evaluation.metrics``) score them after.
    ``independent``: a metric reads the outputs as independent draws (pass@k), so duplicates and
    empty outputs are kept, never drawn again."""
    prompts = [task.initial_prompt(s) for s in samples]
    result = generate_resumable(
        model, task, prompts, num_samples, sampling, seed, journal, desc=f"evaluate {system}", resample=not independent
    )
    outputs = [Output(sample_id=s.id, text=text, system=system) for s, texts in zip(samples, result.texts) for text in texts]
    return outputs, {"n": len(outputs), "generation": result.stats}
