"""Tables the docs show and the code defines: the plug-ins of every kind (from the registries)
and the stages of a run (from ``STAGE_TABLE``).

Each sits in a Markdown file between ``<!-- generated: NAME -->`` and ``<!-- /generated -->``;
``python -m ilf.docs_tables`` rewrites every such block, ``--check`` says which are stale (a
test runs it, so a plug-in or stage added without the docs fails CI).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/EXTENDING.md")
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


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


TABLES: dict[str, Callable[[], str]] = {"plugins": plugins_table, "stages": stages_table}


def regenerate(text: str, origin: str) -> str:
    """``text`` with every generated block rewritten; an unknown block name is an error naming it."""

    def body(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in TABLES:
            raise ValueError(f"{origin}: unknown generated block {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + match.group(4)

    return BLOCK.sub(body, text)


def stale_documents(root: Path = REPO) -> list[str]:
    """The documents whose generated blocks differ from what the code defines now."""
    return [name for name in DOCUMENTS if regenerate((root / name).read_text(), name) != (root / name).read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ilf.docs_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Only say which documents are stale (exit 1 if any).")
    args = parser.parse_args(argv)
    stale = stale_documents()
    if args.check:
        for name in stale:
            print(f"{name}: generated tables are stale; run python -m ilf.docs_tables", file=sys.stderr)
        return 1 if stale else 0
    from ilf.files import atomic_write_text

    for name in stale:
        atomic_write_text(REPO / name, regenerate((REPO / name).read_text(), name))
        print(f"rewrote the generated tables of {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
