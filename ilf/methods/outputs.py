"""Outputs that exist, scored as they are: the evaluate stage over a file of outputs, or the references.

``method: outputs`` trains nothing and generates nothing. Its systems are those of the outputs JSONL
that ``method_options.outputs.source`` names (one table row per ``system`` in it, each output scored
against its own sample), or, with ``source: references``, each held-out sample's first reference:
the sanity check of a dataset and its metrics (HumanEval's canonical solutions must pass).
``ilf evaluate --outputs`` is this method's evaluate stage over files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.config import ModelConfig, option
from ilf.files import Journal
from ilf.methods import Method
from ilf.records import Output, Sample, read_records
from ilf.registry import METHODS

if TYPE_CHECKING:
    from ilf.view import RunView

REFERENCES = "references"


@dataclass
class OutputsOptions:
    source: str | None = option(
        None, "An outputs JSONL (sample_id, text, system) whose systems are scored, or 'references'; required.", path=True
    )


@METHODS.register("outputs", help="No model: score the systems of an outputs file (method_options.outputs.source), or the references.")
class ScoredOutputs(Method):
    Options = OutputsOptions
    trains = False

    def learns_from_samples(self, config: Any) -> bool:
        return False

    def _by_system(self, run: RunView) -> dict[str, list[Output]]:
        source = self.options(run.config).source
        if not source:
            raise ValueError("method_options.outputs.source: required (an outputs JSONL, or references)")
        samples = read_records(run.paths.eval_samples, Sample)
        if source == REFERENCES:
            outputs = [Output(sample_id=s.id, text=s.references[0], system=REFERENCES) for s in samples if s.references]
            if not outputs:
                raise ValueError("references: none of the evaluation samples has a reference")
            return {REFERENCES: outputs}
        ids = {s.id for s in samples}
        records = read_records(source, Output)
        unknown = sorted({o.sample_id for o in records if o.sample_id not in ids})
        if unknown:
            raise ValueError(f"{source}: {len(unknown)} outputs are for samples not in the evaluation samples (first: {unknown[0]!r})")
        grouped: dict[str, list[Output]] = {}
        for output in records:
            grouped.setdefault(output.system, []).append(output)
        return grouped

    def systems(self, run: RunView) -> dict[str, ModelConfig]:
        source = str(self.options(run.config).source)
        return {system: ModelConfig(name_or_path=source) for system in self._by_system(run)}  # nothing is loaded

    def generate(
        self, run: RunView, model: ModelConfig, samples: list[Sample], system: str, journal: Journal | None = None
    ) -> tuple[list[Output], dict[str, Any]]:
        outputs = self._by_system(run)[system]
        if system == REFERENCES and self.options(run.config).source == REFERENCES:
            return outputs, {"n": len(outputs), "samples_without_reference": len(samples) - len(outputs)}
        return outputs, {"n": len(outputs), "problems": len({o.sample_id for o in outputs})}
