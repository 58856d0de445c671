"""Choose one refinement per sample. Selectors are plug-ins, one module each, registered in
``SELECTORS`` by name. Every configured selector scores every candidate; the
method named in ``selection.method`` picks, and the others' scores are kept for analysis."""

from __future__ import annotations

import logging
from typing import Any

from ilf.config import ModelConfig, SelectionConfig
from ilf.records import Candidate, Selection
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector, argmax

log = logging.getLogger(__name__)


def build_selector(name: str, config: SelectionConfig, judge: ModelConfig, task: Any = None) -> Selector:
    """The selector ``name`` names: registered here, or ``module.path:Class`` (a Selector subclass
    with an optional ``from_config(config, judge, task)``; otherwise built with no arguments)."""
    cls = SELECTORS.get(name)
    factory = getattr(cls, "from_config", None)
    return factory(config, judge, task) if factory is not None else cls()


def select(
    items: list[SelectionItem],
    config: SelectionConfig,
    judge: ModelConfig,
    task: Any = None,
) -> list[Selection]:
    """Score with ``config.method`` and each of ``config.also_score``; pick by ``config.method``.

    A sample whose best candidate scores below the picking selector's ``min_score`` gets no
    selection: fewer selections than items come back, and the caller counts the difference."""
    names = list(dict.fromkeys([config.method, *config.also_score]))
    all_scores: dict[str, list[list[float]]] = {}
    minimum = None
    picker: Selector | None = None
    for name in names:
        selector = build_selector(name, config, judge, task)
        if name == config.method:
            minimum = selector.min_score
            picker = selector
        log.info("scoring %d samples with %s", len(items), name)
        all_scores[name] = selector.score(items)
    selections = []
    for row, item in enumerate(items):
        candidates = [
            Candidate(text=text, scores={name: all_scores[name][row][c] for name in names}) for c, text in enumerate(item.candidates)
        ]
        index = argmax(all_scores[config.method][row])
        if minimum is not None and all_scores[config.method][row][index] < minimum:
            continue
        selection = Selection(
            sample_id=item.sample.id,
            selector=config.method,
            index=index,
            text=item.candidates[index],
            candidates=candidates,
            feedback=item.feedback,
        )
        selections.append(picker.finish(row, selection) if picker is not None else selection)
    return selections


__all__ = ["SelectionItem", "Selector", "select", "build_selector", "argmax"]
