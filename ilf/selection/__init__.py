"""Choose one refinement per sample. Selectors are plug-ins, one module each, registered in
``SELECTORS`` by name, with settings of their own under ``selection_options.<name>``. Every
configured selector scores every candidate; the method named in ``selection.method`` picks, and
the others' scores are kept for analysis."""

from __future__ import annotations

import logging
from typing import Any

from ilf.config import RunConfig
from ilf.records import Candidate, Selection
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector, argmax

log = logging.getLogger(__name__)


def build_selector(name: str, config: RunConfig, task: Any = None) -> Selector:
    """The selector ``name`` names (registered here, or ``module.path:Class``), built for ``config``."""
    selector: Selector = SELECTORS.get(name).from_config(config, task)
    return selector


def select(items: list[SelectionItem], run_config: RunConfig, task: Any = None, run: Any = None) -> list[Selection]:
    """Score with ``selection.method`` and each of ``selection.also_score``; pick by ``selection.method``.

    Candidates the picking selector scores alike (all that pass their tests, all a person did not
    pick) are told apart by the first of ``also_score``, else the first of them is taken: the
    candidates are drawn independently, so that is as good as a random one. A sample whose best
    candidate scores below the picking selector's ``min_score`` gets no selection: fewer
    selections than items come back, and the caller counts the difference."""
    config = run_config.selection
    names = list(dict.fromkeys([config.method, *config.also_score]))
    tie_breaker = names[1] if len(names) > 1 else None
    all_scores: dict[str, list[list[float]]] = {}
    picker = build_selector(config.method, run_config, task)
    for name in names:
        selector = picker if name == config.method else build_selector(name, run_config, task)
        if run is not None:
            selector.use_run(run)
        log.info("scoring %d samples with %s", len(items), name)
        all_scores[name] = selector.score(items)
    selections = []
    for row, item in enumerate(items):
        candidates = [
            Candidate(text=text, scores={name: all_scores[name][row][c] for name in names}) for c, text in enumerate(item.candidates)
        ]
        scores = all_scores[config.method][row]
        tied = [c for c, score in enumerate(scores) if score == max(scores)]
        index = tied[0] if tie_breaker is None else max(tied, key=lambda c: (all_scores[tie_breaker][row][c], -c))
        if picker.min_score is not None and scores[index] < picker.min_score:
            continue
        selection = Selection(
            sample_id=item.sample.id,
            selector=config.method,
            index=index,
            text=item.candidates[index],
            candidates=candidates,
            feedback=item.feedback,
        )
        selections.append(picker.finish(row, selection))
    return selections


__all__ = ["SelectionItem", "Selector", "select", "build_selector", "argmax"]
