"""Feedback rounds: a run repeated on fresh samples, each round starting from the last one's policy.

    ilf run experiments/offline.yaml --set rounds=3

Round k is an ordinary run in ``RUN_DIR/round-k/``: the policy trained in round k-1 writes outputs
for ``data.limit`` samples no earlier round saw (``data.offset``), the feedback source critiques
them, the refiner (always the configured one, not the trained policy) refines, the selector picks,
and the policy is fine-tuned, from round k-1's weights (``round_training: continue``) or from the
base policy on the targets of rounds 1..k (``restart``). Each round resumes stage by stage like any
run, and a round whose inputs changed (an earlier round retrained) reruns. ``RUN_DIR/metrics.json``
is the last round's, with every round's metrics under ``rounds``; ``rounds.md`` and ``rounds.png``
show them side by side. A method that trains nothing has one round: its policy never changes.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

from ilf.config import RunConfig
from ilf.evaluation import format_table
from ilf.feedback import get_source
from ilf.files import atomic_write_text
from ilf.layout import round_dir
from ilf.methods import get_method
from ilf.pipeline import Pipeline, RunPaths
from ilf.plots import plot_run_rounds
from ilf.results import RunResult

log = logging.getLogger(__name__)


class Rounds:
    """The rounds of a run; ``status`` and ``run`` as a Pipeline's, over every round."""

    def __init__(self, config: RunConfig, run_dir: str | Path, shared: str | Path | None = None) -> None:
        self.config = config
        self.root = Path(run_dir)
        self.shared = shared
        self.count = config.rounds if get_method(config.method, config).trains else 1

    def round_dir(self, k: int) -> Path:
        return round_dir(self.root, k)

    def round_config(self, k: int) -> RunConfig:
        c = self.config
        # the refiner stays the configured model
        base = get_source(c.feedback.source, c).round_config(dataclasses.replace(c, rounds=1, refiner=c.refiner_model), k)
        if k == 1:
            return base
        previous = dataclasses.replace(c.policy, name_or_path=str(RunPaths(self.round_dir(k - 1)).model), adapter=None, backend="local")
        data = dataclasses.replace(c.data, offset=c.data.offset + (k - 1) * (c.data.limit or 0))
        if c.round_training == "restart":
            return dataclasses.replace(base, data=data, outputs=dataclasses.replace(c.outputs, model=previous))
        return dataclasses.replace(base, data=data, policy=previous)

    def pipelines(self, upto: int | None = None) -> list[Pipeline]:
        runs: list[Pipeline] = []
        for k in range(1, (upto or self.count) + 1):
            earlier = list(runs) if self.config.round_training == "restart" else None
            runs.append(Pipeline(self.round_config(k), self.round_dir(k), self.shared, earlier=earlier))
        return runs

    def status(self, reasons: bool = False) -> dict[str, str]:
        return {
            f"round-{k}/{stage}": state
            for k, run in enumerate(self.pipelines(), start=1)
            for stage, state in run.status(reasons=reasons).items()
        }

    def run(
        self, from_stage: str | None = None, until: str | None = None, after_round: Callable[[int, Pipeline], None] | None = None
    ) -> dict[str, Any]:
        """Every round in turn; ``after_round(k, pipeline)`` is called as each one ends."""
        summaries: dict[str, Any] = {}
        for k in range(1, self.count + 1):
            # Built when its turn comes: round k's policy is round k-1's trained model.
            run = self.pipelines(k)[-1]
            log.info("round %d of %d", k, self.count)
            summaries[f"round-{k}"] = run.run(from_stage=from_stage, until=until if k == self.count else None)
            if after_round is not None:
                after_round(k, run)
        if until in (None, "evaluate"):
            self.write_summary()
        return summaries

    def write_summary(self) -> dict[str, Any]:
        per_round = [RunResult.read(RunPaths(self.round_dir(k)).metrics).round_scores(k) for k in range(1, self.count + 1)]
        last = RunResult.read(RunPaths(self.round_dir(self.count)).metrics)
        columns = tuple(last.primary_numbers())
        table = format_table({f"round {r.number}": r.primary_row() for r in per_round}, columns=columns)
        result = dataclasses.replace(last, rounds=per_round, rounds_table=table, round_training=self.config.round_training)
        result.write(RunPaths(self.root).metrics)
        atomic_write_text(self.root / "rounds.md", f"# {self.config.name}: {self.count} rounds ({self.config.round_training})\n\n{table}\n")
        plot_run_rounds(per_round, columns, self.root / "rounds.png")
        return result.to_json()


def open_run(config: RunConfig, run_dir: str | Path, shared: str | Path | None = None) -> Pipeline | Rounds:
    """A run directory's driver: a plain pipeline, or its rounds when ``rounds`` > 1."""
    return Rounds(config, run_dir, shared) if config.rounds > 1 else Pipeline(config, run_dir, shared)


__all__ = ["Rounds", "open_run"]
