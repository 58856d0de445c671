"""Metrics: how good a system's held-out outputs are, and what a run's feedback round did.

A metric is a plug-in: a module in this package registers a ``Metric`` subclass with
``@METRICS.register(name, help=...)``; ``evaluation.metrics`` lists the ones a run computes
(``mypkg.metrics:MyMetric`` for one of your own). ``score_outputs`` scores each evaluated system;
``score_round`` describes the round itself (selection hit rates, the quality of the training
targets). ``columns`` are the keys tables show; ``needs`` names stages the metric reads (the win
rate needs the reward model). What it reads (its options, a judge model's files, a prompt file)
is recorded as it reads it, as for every stage (``ilf.reads``). Its own settings are an ``Options`` dataclass under ``metric_options.<name>`` (see ``ilf.plugin``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.plugin import Plugin
from ilf.records import Output, Sample
from ilf.registry import METRICS

if TYPE_CHECKING:
    from ilf.config import RunConfig
    from ilf.view import RunView


class Metric(Plugin):
    columns: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    # False: ``score_outputs`` gets one output per sample, in the samples' order (the first, when
    # evaluation.num_samples > 1); True: every output, so it can estimate pass@k, say.
    every_output: bool = False
    # True: the metric treats a sample's outputs as independent draws (pass@k), so the evaluate
    # stage keeps duplicate and empty draws as they came instead of drawing again.
    independent_samples: bool = False
    # The run's task when there is no run (``ilf evaluate --outputs``): a code task carries the
    # sandbox settings of the config.
    task: Any = None

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> Metric:
        metric = cls()
        metric.task = task
        return metric

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        """Raise ``SchemaError`` naming the key when the run's config cannot work with this metric;
        called when the config loads, before any stage runs (keep the module's imports light)."""

    def score_outputs(self, run: RunView | None, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        """Scores of one system's outputs; ``<key>_sem`` for errors. ``samples`` are the samples that
        have an output, and ``outputs[i]`` is the output of ``samples[i]`` (every output of them, in
        any order, when ``every_output``)."""
        return {}

    def score_round(self, run: RunView) -> dict[str, Any]:
        """Scores of the run's feedback round and training targets (flat keys)."""
        return {}


def score_system(metrics: list[Metric], run: RunView | None, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
    """Every metric's scores of one system's outputs, over the samples that have an output.

    Each metric gets exactly those samples, in order, beside their first output each (or all of
    their outputs, ``every_output``), so a sample without an output can never shift which sample
    another output is scored against. ``samples_without_output`` counts the samples left out."""
    first: dict[str, Output] = {}
    for output in outputs:
        first.setdefault(output.sample_id, output)
    scored = [s for s in samples if s.id in first]
    one_each = [first[s.id] for s in scored]
    known = {s.id for s in scored}
    every = [o for o in outputs if o.sample_id in known]
    scores: dict[str, Any] = {}
    if len(scored) < len(samples):
        scores["samples_without_output"] = len(samples) - len(scored)
    for metric in metrics:
        scores.update(metric.score_outputs(run, scored, every if metric.every_output else one_each))
    return scores


def get_metrics(names: list[str], config: RunConfig | None = None, task: Any = None) -> list[Metric]:
    """The metrics named, built for ``config`` (the defaults when none) and told the run's ``task``
    (the sandbox of a code task, say)."""
    from ilf.config import RunConfig

    config = config if config is not None else RunConfig()
    return [METRICS.get(name).from_config(config, task) for name in dict.fromkeys(names)]


__all__ = ["Metric", "get_metrics", "score_system"]
