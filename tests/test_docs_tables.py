"""The docs' tables of plug-ins and stages are generated from the code and kept current."""

from __future__ import annotations

from ilf.docs_tables import DOCUMENTS, REPO, regenerate, stale_documents
from ilf.registry import SELECTORS


def test_the_generated_tables_in_the_docs_are_current() -> None:
    assert stale_documents() == [], "run: python -m ilf.docs_tables"
    readme = (REPO / "README.md").read_text()
    for name in ("unit_tests", "labelstudio_round", "judge_win_rate", "humaneval", "sdpo"):  # every kind's newer plug-ins
        assert f"`{name}`" in readme


def test_a_plug_in_registered_without_its_docs_makes_them_stale() -> None:
    text = (REPO / DOCUMENTS[1]).read_text()

    @SELECTORS.register("longest_candidate", help="A selector no document mentions yet.")
    class Longest:
        pass

    try:
        assert "`longest_candidate`" in regenerate(text, "doc") and regenerate(text, "doc") != text
        assert DOCUMENTS[1] in stale_documents()
    finally:
        SELECTORS.unregister("longest_candidate")
    assert stale_documents() == []
