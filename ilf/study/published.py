"""Study reports published with the docs, and the tables the docs pages take from them.

``scripts/rerun-studies.sh`` runs every packaged study from nothing, then ``python -m
ilf.docs_tables --publish RUNS`` copies each study's ``report.md`` into ``docs/studies/reports/``
(its plots left out), beside ``NAME.yaml``: the study config it ran (machine paths left out) and
its provenance (ilf's version and commit, the machine, when, how long). A docs page shows a part of
a report with a generated block, ``<!-- generated: report NAME PART -->``, which ``ilf.docs_tables``
fills from the published report; a test fails when a page and its report disagree, and when a
study's config no longer is the one its published report ran (rerun it and publish).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
REPORTS = REPO / "docs" / "studies" / "reports"
# what is machine-specific in a study's config: where `ilf demo` put the world-model cache
MACHINE_KEYS = (("pretraining", "cache_dir"), ("task", "options", "cache_dir"))
PARTS = ("results", "round", "gates", "contrasts", "cost", "rounds", "profile", "choice", "notes", "provenance")
# How wide a table may be on a published report's page (its side panels hidden by the reports'
# .meta.yml): at 1280 px the column is 1188 px. A wider table is published as several, each with
# the first column (tests/test_docs_render.py measures the result in Chromium).
REPORT_PAGE_PX = 1150


def portable(base: dict[str, Any]) -> dict[str, Any]:
    """A study's base config less the keys that name folders of the machine it ran on, and with the
    paths inside this checkout (a config file's paths are resolved against its folder) relative to it."""
    root = f"{REPO}/"
    base = json.loads(json.dumps(base).replace(json.dumps(root)[1:-1], ""))
    for path in MACHINE_KEYS:
        node = base
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return base


def publish(run_dir: Path, name: str, reports: Path | None = None) -> Path:
    """Copy the report of the study run in ``run_dir`` into ``reports/NAME.md``, with its config and provenance in ``NAME.yaml``."""
    reports = reports or REPORTS
    from ilf.files import atomic_write_text

    report = (run_dir / "report.md").read_text(encoding="utf-8")
    ran = yaml.safe_load((run_dir / "study.yaml").read_text(encoding="utf-8"))
    provenance_path = run_dir / "provenance.json"
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    from ilf.study.status import format_profile, stage_profile

    body = "\n".join(line for line in report.splitlines() if not line.startswith("![")).rstrip() + "\n"
    body = split_wide_tables(body, REPORT_PAGE_PX)
    profile = stage_profile(run_dir)
    if profile:  # where the run's time went (`ilf status RUN --profile`), summed over its processes
        body += "\n## Profile\n\nSeconds of each stage summed over the cells that computed it, and the largest peak memory:\n\n"
        body += format_profile(profile) + "\n"
    where = ", ".join(
        x
        for x in (
            f"ilf {provenance.get('ilf', '?')}",
            f"commit {provenance['commit']}" if provenance.get("commit") else "",
            provenance.get("finished", ""),
            f"{provenance['seconds']:.0f} s" if provenance.get("seconds") is not None else "",
            f"{provenance['machine']['cpu']}, {provenance['machine']['cores']} cores" if provenance.get("machine") else "",
        )
        if x
    )
    header = f"<!-- published by `python -m ilf.docs_tables --publish` from the study {name!r}: {where} -->\n\n"
    reports.mkdir(parents=True, exist_ok=True)
    atomic_write_text(reports / f"{name}.md", header + body)
    record = {"study": ran["study"], "base": portable(ran["base"]), "provenance": provenance}
    atomic_write_text(reports / f"{name}.yaml", yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    return reports / f"{name}.md"


def sections(name: str, reports: Path | None = None) -> list[tuple[str, str, str]]:
    """(part, heading, body) of each ``##`` section of a published report."""
    reports = reports or REPORTS
    path = reports / f"{name}.md"
    if not path.exists():
        raise ValueError(
            f"no published report {path.relative_to(REPO) if path.is_relative_to(REPO) else path}: run the study and publish it"
        )
    text = path.read_text(encoding="utf-8")
    found = []
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = chunk.partition("\n")
        found.append((_part(heading), heading.strip(), join_split_tables(body.strip("\n"))))
    return found


def _table_width(rows: list[list[str]]) -> float:
    """A table's narrowest width in px, over-estimated: the longest word of each column (code in the
    first column does not wrap, extra.css), at the widths measured for Material's table font."""
    width = 0.0
    for j, column in enumerate(zip(*rows, strict=True)):
        words = [[cell] if j == 0 and cell.startswith("`") else re.split(r"\s+|(?<=-)", cell) for cell in column]
        width += 7.6 * max(len(word) for cell in words for word in cell) + 18
    return width


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _segments(text: str) -> list[str | list[str]]:
    """The lines of ``text``, each table's lines gathered into one list."""
    found: list[str | list[str]] = []
    for line in text.split("\n"):
        if line.startswith("|") and found and isinstance(found[-1], list):
            found[-1].append(line)
        else:
            found.append([line] if line.startswith("|") else line)
    return found


def split_wide_tables(text: str, most_px: float) -> str:
    """``text`` with each table wider than ``most_px`` split into as few tables as fit, in even
    parts, each keeping the first column (the row names)."""
    out: list[str] = []
    for segment in _segments(text):
        if isinstance(segment, str):
            out.append(segment)
            continue
        rows = [_cells(line) for line in segment]
        shown = [r for k, r in enumerate(rows) if k != 1]  # the separator row is no content
        if len({len(r) for r in rows}) != 1 or len(rows) < 2 or _table_width(shown) <= most_px:
            out.extend(segment)
            continue
        data = list(range(1, len(rows[0])))
        for parts in range(2, len(data) + 1):
            chunks = [data[k * len(data) // parts : (k + 1) * len(data) // parts] for k in range(parts)]
            if all(_table_width([[r[0], *(r[c] for c in chunk)] for r in shown]) <= most_px for chunk in chunks):
                break
        for n, chunk in enumerate(chunks):
            if n:
                out.append("")
            out.extend(_row([r[0], *(r[c] for c in chunk)]) for r in rows)
    return "\n".join(out)


def join_split_tables(text: str) -> str:
    """``text`` with the tables ``split_wide_tables`` made of one table joined again (tables apart
    by blank lines only, with the same first column), so that a row or column is found whole."""
    segments, out, i = _segments(text), [], 0
    while i < len(segments):
        segment = segments[i]
        i += 1
        if isinstance(segment, str):
            out.append(segment)
            continue
        rows, joined = [_cells(line) for line in segment], False
        while True:  # the next table, after blank lines, continues this one if its row names are the same
            after = i
            while after < len(segments) and segments[after] == "":
                after += 1
            more = segments[after] if after > i and after < len(segments) else None
            if not isinstance(more, list) or [r[0] for r in map(_cells, more)] != [r[0] for r in rows]:
                break
            rows = [[*a, *b[1:]] for a, b in zip(rows, map(_cells, more), strict=True)]
            i, joined = after + 1, True
        out.extend([_row(r) for r in rows] if joined else segment)
    return "\n".join(out)


def _part(heading: str) -> str:
    for prefix, part in (
        ("The feedback round", "round"),
        ("Gates", "gates"),
        ("Contrasts", "contrasts"),
        ("Cost", "cost"),
        ("By round", "rounds"),
        ("Profile", "profile"),
        ("Choice", "choice"),
        ("Notes", "notes"),
    ):
        if heading.startswith(prefix):
            return part
    return "results"


def report_block(args: str, reports: Path | None = None, page: Path | None = None) -> str:
    """A generated block's body: ``NAME PART ["text a heading holds" ...] [rows=a,b,prefix*]
    [columns=a,b,prefix*] [where=TEXT]``, each section of that part (and holding every text given),
    its heading shown in bold; ``rows=`` keeps only the table rows named, ``columns=`` the first
    column and the columns named (a table too wide for a page is shown in parts, one block each),
    ``where=`` only the rows holding the text."""
    reports = reports or REPORTS
    words = shlex.split(args)
    if len(words) < 2 or words[1] not in PARTS:
        raise ValueError(f"a report block reads 'report NAME PART [\"heading text\" ...]', PART one of {', '.join(PARTS)}; got {args!r}")
    name, part = words[0], words[1]
    rows = [w[len("rows=") :].split(",") for w in words[2:] if w.startswith("rows=")]
    columns = [w[len("columns=") :].split(",") for w in words[2:] if w.startswith("columns=")]
    where = [w[len("where=") :] for w in words[2:] if w.startswith("where=")]
    wanted = [w for w in words[2:] if not w.startswith(("rows=", "columns=", "where="))]
    if part == "provenance":
        return provenance_line(name, reports, page)
    chosen = [(h, b) for p, h, b in sections(name, reports) if p == part and all(w in h for w in wanted)]
    if not chosen:
        raise ValueError(f"the published report {name!r} has no {part} section whose heading holds {wanted}")
    if rows:
        chosen = [(heading, _rows(body, rows[0])) for heading, body in chosen]
    if where:  # only the table rows whose cells hold the text (one setting of a long cost table, say)
        chosen = [(heading, _rows_holding(body, where[0])) for heading, body in chosen]
    if columns:
        chosen = [(heading, _columns(body, columns[0])) for heading, body in chosen]
    shown = [f"**{heading}**\n\n{body}\n" if len(chosen) > 1 or part == "results" else f"{body}\n" for heading, body in chosen]
    return "\n".join(shown)


def _rows_holding(body: str, text: str) -> str:
    """A section with only the table rows holding ``text`` (its header and separator kept)."""
    lines = body.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    keep = set(table[:2]) | {i for i in table[2:] if text in lines[i]}
    if len(keep) == len(table[:2]):
        raise ValueError(f"no table row holds {text!r}")
    return "\n".join(line for i, line in enumerate(lines) if i not in table or i in keep)


def _columns(body: str, names: list[str]) -> str:
    """A section's table with only its first column and the columns named (``name``, or
    ``prefix*``), in the order named."""
    lines = body.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    if len(table) < 2:
        raise ValueError(f"no table to take the columns {names} from")
    header = _cells(lines[table[0]])
    picked = [
        j
        for name in names
        for j, column in enumerate(header[1:], 1)
        if (column.startswith(name[:-1]) if name.endswith("*") else column == name)
    ]
    if not picked:
        raise ValueError(f"no column named {names} in the table (columns: {', '.join(header[1:])})")
    for i in table:
        cells = _cells(lines[i])
        lines[i] = _row([cells[0], *(cells[j] for j in picked)])
    return "\n".join(lines)


def _rows(body: str, names: list[str]) -> str:
    """A section's table with only the rows named (``name``, or ``prefix*``), in the order named."""
    lines = body.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    if len(table) < 3:
        return body
    head, rows = lines[table[0] : table[0] + 2], [lines[i] for i in table[2:]]
    key = {row: row.split("|")[1].strip() for row in rows}
    kept = [row for name in names for row in rows if (key[row].startswith(name[:-1]) if name.endswith("*") else key[row] == name)]
    if not kept:
        raise ValueError(f"no row named {names} in the table")
    return "\n".join([*lines[: table[0]], *head, *kept, *lines[table[-1] + 1 :]]).strip("\n")


def value(args: str, reports: Path | None = None) -> str:
    """One number of a published report, for a sentence: ``NAME PART "heading text" "row;cells" "column"``.
    The section of that part whose heading holds the text; the table row holding every ``;``-separated
    cell; the column named (``difference`` in a contrasts table gives the mean difference and its
    interval). A cell's standard error in brackets is left out."""
    words = shlex.split(args)
    if len(words) != 5:
        raise ValueError(f'a value reads \'NAME PART "heading text" "row;cells" "column"\', got {args!r}')
    name, part, heading_text, row_text, column = words
    terms = [t.strip() for t in row_text.split(";")]
    for found_part, heading, body in sections(name, reports):
        if found_part != part or heading_text not in heading:
            continue
        lines = [line for line in body.splitlines() if line.startswith("|")]
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(t in cells for t in terms):
                if column == "difference":
                    return f"{cells[header.index('mean difference')]} {cells[header.index('95% interval')]}"
                if column not in header:
                    raise ValueError(f"{name} {part}: no column {column!r} (columns: {', '.join(header)})")
                return cells[header.index(column)].split(" (")[0]
        raise ValueError(f"{name} {part} {heading!r}: no row holding {terms}")
    raise ValueError(f"the published report {name!r} has no {part} section whose heading holds {heading_text!r}")


def provenance_line(name: str, reports: Path | None = None, page: Path | None = None) -> str:
    """One sentence: what ran the published report, where, when and for how long, and a link to it
    (relative to ``page``, the document it goes in; default a page beside the reports' folder)."""
    import os

    reports = reports or REPORTS
    link = Path(os.path.relpath(reports / f"{name}.md", page.parent)).as_posix() if page else f"reports/{name}.md"
    path = reports / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"no published report {name!r} (docs/studies/reports/{name}.yaml): run the study and publish it")
    p = yaml.safe_load(path.read_text(encoding="utf-8")).get("provenance") or {}
    machine = p.get("machine") or {}
    commit = f" at commit `{str(p['commit'])[:12]}`" if p.get("commit") else ""
    return (
        f"The tables below are from the [published report]({link}) that `scripts/rerun-studies.sh` wrote: ilf "
        f"{p.get('ilf', '?')}{commit}, finished {str(p.get('finished', '?'))[:16].replace('T', ' ')} UTC, {_minutes(float(p.get('seconds') or 0))} "
        f"for {p.get('cells', '?')} cells on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores"
        + (f", load average {p['load_15min']} over the last 15 minutes" if p.get("load_15min") is not None else "")
        + ").\n"
    )


def times_table(reports: Path | None = None) -> str:
    """Every published report: its cells and how long its run took, and their sum (what a rerun of them all takes)."""
    reports = reports or REPORTS
    lines = ["| study | cells | time | load average |", "|---|---|---|---|"]
    total = 0.0
    records = {path: yaml.safe_load(path.read_text(encoding="utf-8")).get("provenance") or {} for path in reports.glob("*.yaml")}
    for path, p in sorted(records.items(), key=lambda item: str(item[1].get("finished", ""))):  # in the order they ran
        seconds = float(p.get("seconds") or 0)
        total += seconds
        load = p.get("load_15min")
        lines.append(
            f"| [{path.stem}](reports/{path.stem}.md) | {p.get('cells', '?')} | {_minutes(seconds)} | {load if load is not None else '-'} |"
        )
    lines.append(f"| all | | {_minutes(total)} | |")
    return "\n".join(lines) + "\n"


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def stale_reports(reports: Path | None = None) -> list[str]:
    """The published reports whose study config differs from the one the code ships now (or that are gone)."""
    reports = reports or REPORTS
    from ilf.study.config import load_study

    stale = []
    for record_path in sorted(reports.glob("*.yaml")):
        record = yaml.safe_load(record_path.read_text(encoding="utf-8"))
        source = study_source(record_path.stem)
        if source is None:
            stale.append(f"{record_path.stem}: no study config of that name ships any longer")
            continue
        study, base, _ = load_study(source, [])
        if not _same_study(study, record["study"]) or portable(base) != record["base"]:
            stale.append(f"{record_path.stem}: {source.relative_to(REPO)} changed since its report was published")
    return stale


def _same_study(study: Any, recorded: dict[str, Any]) -> bool:
    """The study section as it ran equals the one shipped now, read as a config: a key added since,
    at its default, changes nothing (a key since removed does)."""
    from ilf.config import ConfigError
    from ilf.schema import build
    from ilf.study.config import StudyConfig

    try:
        return bool(build(StudyConfig, recorded, ConfigError, "the published study") == study)
    except ConfigError:
        return False


def study_source(name: str) -> Path | None:
    """The config of a published study: a packaged one (ilf/studies) or an example (experiments/)."""
    for folder in (REPO / "ilf" / "studies", REPO / "experiments"):
        if (folder / f"{name}.yaml").exists():
            return folder / f"{name}.yaml"
    return None


__all__ = [
    "value",
    "REPORTS",
    "REPORT_PAGE_PX",
    "join_split_tables",
    "portable",
    "publish",
    "report_block",
    "sections",
    "split_wide_tables",
    "stale_reports",
    "study_source",
    "times_table",
]
