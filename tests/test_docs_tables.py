"""The docs' generated tables and reference pages (plug-ins, stages, config keys, commands) are
generated from the code and kept current."""

from __future__ import annotations

import argparse

import pytest

from ilf.docs_tables import DOCUMENTS, REPO, argument_default, regenerate, stale_documents
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
    sdpo, code = plugins.split("### `sdpo`")[1], plugins.split("### `code`")[1].split("###")[0]
    assert "Options, under `method_options.sdpo`:" in sdpo and "| `num_generations` |" in sdpo
    assert "Options, under `task.options`:" in code and "| `timeout` | `10.0` |" in code
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


def test_every_plug_in_option_has_help() -> None:
    from ilf.plugin import options_help
    from ilf.registry import ALL

    missing = [
        f"{registry.kind} {name}: {key}"
        for registry in ALL
        for name in registry.names()
        for key, _, text in options_help(registry, name)[1]
        if not text.strip()
    ]
    assert missing == [], "give each option its help: option(default, 'what it does') beside the field"
    assert "| - |" not in (REPO / "docs" / "reference" / "plugins.md").read_text()


def _arguments(parser: argparse.ArgumentParser, command: str = "ilf") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _arguments(child, f"{command} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            found.append((command, action))
    return found


def test_every_command_argument_states_its_default() -> None:
    from ilf.cli import build_parser

    arguments = _arguments(build_parser())
    missing = [
        f"{command} {(action.option_strings or [action.dest])[0]}" for command, action in arguments if argument_default(action) is None
    ]
    assert missing == [], "say it in the argument's help: '(default: X)', '(default: from the config)' or '(default: none)'"
    assert "| - |" not in (REPO / "docs" / "reference" / "cli.md").read_text()
    said = {(command, action.dest): argument_default(action) for command, action in arguments}
    assert said[("ilf", "verbose")] == "off" and said[("ilf run", "config")] == "required"
    assert said[("ilf select", "method")] == "from the config" and said[("ilf run", "run_dir")] == "runs/&lt;name&gt;"
    assert said[("ilf evaluate", "system")] == "`model`" and said[("ilf run", "overrides")] == "none"


def test_a_generated_block_without_its_end_is_an_error_naming_the_page_and_line() -> None:
    # without its end marker a block was never rewritten, so a stale table passed the check
    text = "# Page\n\n<!-- generated: plugins -->\n| kind |\n\n## Next\n"
    with pytest.raises(ValueError, match=r"^page\.md:3: <!-- generated: plugins --> has no <!-- /generated --> after its table$"):
        regenerate(text, "page.md")
    assert "`slf5k`" in regenerate(text.replace("\n\n## Next", "<!-- /generated -->\n\n## Next"), "page.md")
