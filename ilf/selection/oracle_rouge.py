"""Score candidates by ROUGE-L F1 against the sample's references.

This peeks at the human references, which a real round does not have: an upper-bound ablation.
"""

from __future__ import annotations

from ilf.evaluation import rouge_l
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector


@SELECTORS.register("oracle_rouge", help="ROUGE-L against the sample's references: an oracle upper bound, not for real use.")
class OracleRougeSelector(Selector):
    reads_feedback = False  # it reads the references instead

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        for item in items:
            if not item.sample.references:
                raise ValueError(f"sample {item.sample.id}: oracle_rouge needs references")
        return [[rouge_l(c, item.sample.references) for c in item.candidates] for item in items]
