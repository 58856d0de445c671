"""Tables the docs show and the code defines: the plug-ins of every kind (from the registries),
the stages of a run (from ``STAGE_TABLE``), and the reference pages: every config key with its
default and help (from the config dataclasses, as ``ilf config --fields`` lists them), every
plug-in with its options (as ``ilf plugins KIND`` lists them) and every command with its arguments
(from the parsers of ``ilf``).

Each sits in a Markdown file between ``<!-- generated: NAME -->`` and ``<!-- /generated -->``;
``python -m ilf.docs_tables`` rewrites every such block, ``--check`` says which are stale (a
test runs it, so a plug-in or stage added without the docs fails CI). The results pages take their
tables from the studies' published reports the same way (``<!-- generated: report NAME PART -->``,
see ``ilf.study.published``); ``--publish RUNS`` publishes the reports of the studies run under
``RUNS`` first. A benchmark's table comes from what it wrote into ``benchmarks/results/NAME.md``
(``<!-- generated: benchmark NAME -->``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = (
    "README.md",
    "docs/index.md",
    "docs/code-task.md",
    "docs/studies/index.md",
    "docs/studies/demo.md",
    "docs/studies/rounds.md",
    "docs/studies/candidates.md",
    "docs/studies/weak-refiner.md",
    "docs/studies/peers.md",
    "docs/studies/compare.md",
    "docs/studies/code.md",
    "docs/EXTENDING.md",
    "docs/concepts.md",
    "docs/scale-out.md",
    "docs/reference/config.md",
    "docs/reference/plugins.md",
    "docs/reference/cli.md",
)
VALUE = re.compile(r"(<!-- v (?P<args>[^>]*?) -->)(?P<body>.*?)(<!-- /v -->)", re.S)  # one number of a report, in a sentence
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+)(?: (?P<args>[^>]*?))? -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def plugins_table() -> str:
    """Every kind of plug-in: where a config names it, what it is, and the ones ilf registers."""
    from ilf.registry import ALL

    lines = ["| kind | config key | interface | built in |", "|---|---|---|---|"]
    for registry in ALL:
        names = ", ".join(f"`{name}`" for name in registry.names())
        lines.append(f"| {registry.kind} | `{registry.config_key}` | {registry.interface} | {names} |")
    return "\n".join(lines) + "\n"


def stages_table() -> str:
    """Every stage of a run: what it reads and the files it writes."""
    from ilf.pipeline import FILES, MODEL_DIRS, STAGE_TABLE

    lines = ["| stage | after | reads | writes |", "|---|---|---|---|"]
    for stage in STAGE_TABLE:
        after = ", ".join(f"`{name}`" for name in stage.after) or "-"
        writes = ", ".join(f"`{FILES[key]}/`" if key in MODEL_DIRS else f"`{FILES[key]}`" for key in stage.writes)
        lines.append(f"| `{stage.name}` | {after} | {stage.reads} | {writes} |")
    return "\n".join(lines) + "\n"


def _cell(text: object) -> str:
    """Text for a Markdown table cell: one line, its pipes escaped, ``<name>`` shown as text, not a tag."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """A code span for a table cell (a value holding a backtick gets a double-backtick span)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _default_cell(default: str, width: int = 40) -> str:
    """A default for a reference table, cut short (…) past ``width`` characters so that a prompt
    template does not fill a tall cell; ``ilf plugins NAME`` and ``ilf config --fields`` print it whole."""
    return _code(default if len(default) <= width else default[: width - 1].rstrip() + "…")


def config_reference() -> str:
    """Every config key, its default and its help, grouped by the section it belongs to."""
    from ilf.config import field_help
    from ilf.study.config import StudyConfig

    sections: dict[str, list[tuple[str, str, str]]] = {}
    for key, default, help_text in [*field_help(), *field_help(StudyConfig, "study.")]:
        section = key.split(".", 1)[0] if "." in key else ""
        sections.setdefault(section, []).append((key, default, help_text))
    out = []
    for section, rows in sections.items():
        out.append(f"### `{section}`\n" if section else "### Top level\n")
        out.append("| key | default | meaning |\n|---|---|---|")
        out.extend(f"| `{key}` | {_default_cell(default)} | {_cell(help_text)} |" for key, default, help_text in rows)
        out.append("")
    return "\n".join(out)


def plugins_reference() -> str:
    """Every plug-in of every kind: its help and, where it has settings of its own, each option."""
    from ilf.plugin import options_help
    from ilf.registry import ALL

    out = []
    for registry in ALL:
        out.append(f"## {registry.kind.capitalize()}s: `{registry.config_key}`\n")
        out.append(f"A {registry.kind} is {registry.interface}.\n")
        for name in registry.names():
            out.append(f"### `{name}`\n")
            out.append(_cell(registry.help(name)) + "\n")
            where, options = options_help(registry, name)
            if options:
                out.append(f"Options, under `{where}`:\n")
                out.append("| key | default | meaning |\n|---|---|---|")
                # each key under the section named above it: a full dotted key does not wrap, and its table would scroll
                out.extend(
                    f"| `{key.removeprefix(where + '.')}` | {_default_cell(default)} | {_cell(help_text) or '-'} |"
                    for key, default, help_text in options
                )
                out.append("")
    return "\n".join(out)


def _argument(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    value = "" if action.nargs == 0 else " " + str(action.metavar or action.dest.upper())
    return ", ".join(f"`{option}{value}`" for option in action.option_strings)


# "(default X)" or "(default: X)" in an argument's help, one level of parentheses inside X allowed
_SAID_DEFAULT = re.compile(r"\s*\(default:? ((?:[^()]|\([^()]*\))*)\)")


def argument_default(action: argparse.Action) -> str | None:
    """What an argument is when it is not given, for the reference's default column: ``off`` for a
    flag, ``required``, the default its help states ("(default: from the config)", where argparse
    holds None because the config decides), else argparse's default. None when nothing says it."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off" if isinstance(action, argparse._StoreTrueAction) else "on"
    if action.required:
        return "required"
    said = _SAID_DEFAULT.search(action.help or "")
    if said:
        return _code(said[1]) if said[1] == str(action.default) else _cell(said[1])
    if action.default == [] and isinstance(action, argparse._AppendAction):
        return "none"
    if action.default not in (None, argparse.SUPPRESS, []):
        return _code(str(action.default))
    return None


def _commands(parser: argparse.ArgumentParser, prefix: str, summary: str, out: list[str]) -> None:
    """One section per command, its arguments in a table; commands with subcommands recurse."""
    level = "#" * min(prefix.count(" ") + 2, 5)
    out.append(f"{level} `{prefix}`\n")
    out.append(_cell(parser.description or summary) + "\n")
    rows = []
    subcommands: argparse._SubParsersAction | None = None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subcommands = action
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            help_text = _cell(_SAID_DEFAULT.sub("", action.help or ""))  # the default has a column of its own
            if action.choices:
                help_text += f" One of: {', '.join(f'`{choice}`' for choice in action.choices)}."
            rows.append(f"| {_argument(action)} | {argument_default(action) or '-'} | {help_text.strip()} |")
    if rows:
        out.append("| argument | default | meaning |\n|---|---|---|")
        out.extend(rows)
        out.append("")
    if subcommands is not None:
        helps = {choice.dest: choice.help or "" for choice in subcommands._choices_actions}
        if prefix == "ilf":
            out.append("| command | what it does |\n|---|---|")
            out.extend(f"| [`ilf {name}`](#ilf-{name}) | {_cell(helps.get(name, ''))} |" for name in subcommands.choices)
            out.append("")
        for name, child in subcommands.choices.items():
            _commands(child, f"{prefix} {name}", helps.get(name, ""), out)


def cli_reference() -> str:
    """Every command of ``ilf`` and its arguments, read from the parsers the command line uses."""
    from ilf.cli import build_parser

    out: list[str] = []
    _commands(build_parser(), "ilf", "", out)
    return "\n".join(out)


def study_times() -> str:
    """Every published study report and how long its run took (``ilf.study.published``)."""
    from ilf.study.published import times_table

    return times_table()


TABLES: dict[str, Callable[[], str]] = {
    "plugins": plugins_table,
    "study_times": study_times,
    "stages": stages_table,
    "config": config_reference,
    "plugin_options": plugins_reference,
    "cli": cli_reference,
}


def benchmark_block(name: str, origin: str) -> str:
    """The table a benchmark wrote with ``--out benchmarks/results/NAME.md``, as it wrote it (its
    first line, the table's title, left out: the page has its own heading)."""
    path = REPO / "benchmarks" / "results" / f"{name}.md"
    if not path.exists():
        raise ValueError(
            f"{origin}: no benchmark output {path.relative_to(REPO)}: run python benchmarks/{name}.py --out {path.relative_to(REPO)}"
        )
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("#") else lines).strip() + "\n"


def regenerate(text: str, origin: str) -> str:
    """``text`` with every generated block rewritten; an unknown block name, or a block without its
    ``<!-- /generated -->``, is an error naming it."""
    closed = {m.start() for m in BLOCK.finditer(text)}
    for opening in re.finditer(r"<!-- generated: [^>]*-->", text):
        if opening.start() not in closed:
            line = text.count("\n", 0, opening.start()) + 1
            raise ValueError(f"{origin}:{line}: {opening[0]} has no <!-- /generated --> after its table")

    def body(match: re.Match[str]) -> str:
        name = match["name"]
        if name == "report":
            from ilf.study.published import report_block

            try:
                return match.group(1) + report_block(match["args"] or "", page=REPO / origin) + match.group(5)
            except ValueError as err:
                raise ValueError(f"{origin}: {err}") from None
        if name == "benchmark":
            return match.group(1) + benchmark_block((match["args"] or "").strip(), origin) + match.group(5)
        if name not in TABLES:
            raise ValueError(f"{origin}: unknown generated block {name!r} (known: report, benchmark, {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + match.group(5)

    def number(match: re.Match[str]) -> str:
        from ilf.study.published import value

        try:
            return match.group(1) + value(match["args"]) + match.group(4)
        except ValueError as err:
            raise ValueError(f"{origin}: {err}") from None

    return VALUE.sub(number, BLOCK.sub(body, text))


def survey(root: Path = REPO) -> tuple[list[str], list[str]]:
    """The documents whose generated blocks differ from what the code defines now, and the errors
    of those whose blocks cannot be generated (each named; the others are still surveyed)."""
    stale, broken = [], []
    for name in DOCUMENTS:
        text = (root / name).read_text()
        try:
            if regenerate(text, name) != text:
                stale.append(name)
        except ValueError as err:
            broken.append(str(err))
    return stale, broken


def stale_documents(root: Path = REPO) -> list[str]:
    """The documents whose generated blocks differ from what the code defines now."""
    stale, broken = survey(root)
    if broken:
        raise ValueError(broken[0])
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ilf.docs_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Only say which documents are stale (exit 1 if any).")
    parser.add_argument(
        "--publish",
        metavar="RUNS",
        help="First publish the report of every study run under RUNS (RUNS/NAME/report.md) into docs/studies/reports/.",
    )
    args = parser.parse_args(argv)
    if args.publish:
        from ilf.study.published import publish, study_source

        for run_dir in sorted(Path(args.publish).iterdir()):
            if (run_dir / "report.md").exists() and study_source(run_dir.name) is not None:
                print(f"published {publish(run_dir, run_dir.name).relative_to(REPO)}")
    stale, broken = survey()
    for problem in broken:
        print(f"python -m ilf.docs_tables: error: {problem}", file=sys.stderr)
    if args.check:
        from ilf.study.published import stale_reports

        for name in stale:
            print(f"{name}: generated tables are stale; run python -m ilf.docs_tables", file=sys.stderr)
        reports = stale_reports()
        for line in reports:
            print(f"published report {line}: rerun it (scripts/rerun-studies.sh) and publish", file=sys.stderr)
        return 2 if broken else 1 if stale or reports else 0
    from ilf.files import atomic_write_text

    for name in stale:
        atomic_write_text(REPO / name, regenerate((REPO / name).read_text(), name))
        print(f"rewrote the generated tables of {name}")
    return 2 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
