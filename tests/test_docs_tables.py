"""The docs' generated tables and reference pages (plug-ins, stages, config keys, commands) are
generated from the code and kept current."""

from __future__ import annotations

from ilf.docs_tables import DOCUMENTS, REPO, regenerate, stale_documents
from ilf.registry import SELECTORS


def test_the_generated_tables_in_the_docs_are_current() -> None:
    assert stale_documents() == [], "run: python -m ilf.docs_tables"
    concepts = (REPO / "docs" / "concepts.md").read_text()
    for name in ("unit_tests", "labelstudio_round", "judge_win_rate", "humaneval", "sdpo"):  # every kind's newer plug-ins
        assert f"`{name}`" in concepts


def test_the_reference_pages_hold_every_key_plug_in_and_command() -> None:
    from ilf.config import field_help
    from ilf.study.config import StudyConfig

    config = (REPO / "docs" / "reference" / "config.md").read_text()
    for key, _, _ in [*field_help(), *field_help(StudyConfig, "study.")]:
        assert f"| `{key}` |" in config, key
    plugins = (REPO / "docs" / "reference" / "plugins.md").read_text()
    assert "`method_options.sdpo.num_generations`" in plugins and "`task.options.timeout`" in plugins
    cli = (REPO / "docs" / "reference" / "cli.md").read_text()
    for command in ("`ilf run`", "`ilf study`", "`ilf labelstudio push`", "`ilf config`", "`--run-dir RUN_DIR`", "`--smoke`"):
        assert command in cli, command


def test_a_plug_in_registered_without_its_docs_makes_them_stale() -> None:
    extending, plugins = "docs/EXTENDING.md", "docs/reference/plugins.md"
    assert {extending, plugins} <= set(DOCUMENTS)
    text = (REPO / extending).read_text()

    @SELECTORS.register("longest_candidate", help="A selector no document mentions yet.")
    class Longest:
        pass

    try:
        assert "`longest_candidate`" in regenerate(text, "doc") and regenerate(text, "doc") != text
        assert {extending, plugins} <= set(stale_documents())
        assert "A selector no document mentions yet." in regenerate((REPO / plugins).read_text(), plugins)
    finally:
        SELECTORS.unregister("longest_candidate")
    assert stale_documents() == []
