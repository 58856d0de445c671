"""Select the refinement whose *edit* is closest to the feedback in embedding space.

Plain similarity (``embedding``) compares the feedback with the whole refinement, so it rewards
any overlap with the feedback's words, including a refinement that rewrote the wrong part with the
names the feedback mentions. This selector compares the feedback with what the refinement
changed: the words it added and the words it removed relative to the original output (a word-level
diff), each side embedded as one text. A candidate's score is the better of the two similarities;
a candidate that changed nothing scores -1, below any edit. Without an original output it falls
back to plain similarity.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem
from ilf.selection.embedding import EmbeddingSelector

UNCHANGED = -1.0


def edit_spans(original: str, candidate: str) -> tuple[str, str]:
    """(added, removed): the words ``candidate`` inserted and deleted relative to ``original``,
    each run of changed words kept in order and runs separated by ' ; '."""
    before, after = original.split(), candidate.split()
    added: list[str] = []
    removed: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed.append(" ".join(before[i1:i2]))
        if tag in ("replace", "insert"):
            added.append(" ".join(after[j1:j2]))
    return " ; ".join(added), " ; ".join(removed)


@SELECTORS.register(
    "embedding_edit",
    help="Cosine similarity of the feedback and the refinement's edit (the words it added or removed vs the original output).",
)
class EmbeddingEditSelector(EmbeddingSelector):
    name = "embedding_edit"

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        for item in items:
            if not item.feedback:
                raise ValueError(f"sample {item.sample.id}: the embedding_edit selector needs feedback to compare with")
        edits = [[edit_spans(item.output, c) if item.output is not None else (c, "") for c in item.candidates] for item in items]
        texts = [item.feedback for item in items] + [side for row in edits for pair in row for side in pair if side]
        vectors = self.embed(texts)
        scores = []
        for item, row in zip(items, edits):
            feedback = vectors[item.feedback]
            scores.append([max((float(feedback @ vectors[side]) for side in pair if side), default=UNCHANGED) for pair in row])
        return scores
