"""The docs' house style, checked on the Markdown source (fast; the rendered check is test_docs_render.py).

Python-Markdown, which mkdocs uses, needs a blank line where GitHub does not: "text\\n- item" renders
as one run-on paragraph with a literal " - ", a table or list right after a paragraph line is not a
table or list, and a line of text right after a table turns the whole table into a paragraph. At
1280 px the content column shows about 82 characters of code, so a longer code line is cut off.
Long paragraphs are hard to read. Every failure names FILE:LINE and what is wrong, all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import markdown
import pytest
from conftest import REPO

MAX_CODE_CHARS = 80
MAX_WORDS = 120
EXTENSIONS = ["tables", "admonition", "attr_list", "pymdownx.superfences", "pymdownx.highlight"]

FENCE = re.compile(r"^(`{3,}|~{3,})")
ITEM = re.compile(r"^([-*+]|\d+\.)\s+\S")
HEADING = re.compile(r"^#{1,6}(\s|$)")
ADMONITION = re.compile(r"^(!!!|\?\?\?\+?)\s")
RULE = re.compile(r"^([-*_])(\s*\1){2,}\s*$")
GENERATED_START = re.compile(r"^<!--\s*generated:")
GENERATED_END = re.compile(r"^<!--\s*/generated\s*-->")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
COMMENT = re.compile(r"<!--.*?-->")


def documents() -> list[Path]:
    """README.md and every docs page, the studies' published reports included (they are pages of the site)."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@dataclass
class Prose:
    """A paragraph or one list item being read: where it starts and its text."""

    line: int
    what: str
    words: int = 0


def _kind(stripped: str) -> str:
    if not stripped:
        return "blank"
    if FENCE.match(stripped):
        return "fence"
    if HEADING.match(stripped):
        return "heading"
    if ADMONITION.match(stripped):
        return "admonition"
    if stripped.startswith("|"):
        return "table"
    if stripped.startswith("<!--") and stripped.find("-->") + 3 < len(stripped):
        return "comment_text"
    if stripped.startswith("<"):
        return "html"
    if RULE.match(stripped):
        return "rule"
    if ITEM.match(stripped):
        return "item"
    return "text"


def check(text: str, name: str, word_limit: bool = True) -> list[str]:
    """Every house-style failure of one Markdown document, as ``NAME:LINE: what is wrong``; without
    ``word_limit``, long paragraphs pass (the rest still holds: it is how the page renders)."""
    problems: list[str] = []
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":  # front matter
        start = next((i + 1 for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)

    fence: tuple[str, int, int] | None = None  # (marker, indentation, opening line)
    generated = False
    comment = False
    prev = "blank"  # the kind of the line above
    list_led = False  # the block (run of non-blank lines) so far is a list, so text lines continue its items
    list_indent = 0  # the indentation of the block's first item: a nested item needs 4 more
    prose: Prose | None = None

    def where(number: int) -> str:
        return f"{name}:{number}" + (" (in a generated block: change its generator)" if generated else "")

    def close_prose() -> None:
        nonlocal prose
        if prose and word_limit and prose.words > MAX_WORDS:
            problems.append(
                f"{name}:{prose.line}: {prose.what} of {prose.words} words (at most {MAX_WORDS}): "
                "split it, or make it a list or sub-sections"
            )
        prose = None

    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if fence:
            marker, fence_indent, opened = fence
            if stripped.startswith(marker[0] * len(marker)) and not stripped.strip(marker[0]):
                fence = None
                prev = "fence_end"
                continue
            shown = line[fence_indent:] if line[:fence_indent].strip() == "" else line.lstrip()
            if len(shown.expandtabs(4)) > MAX_CODE_CHARS:
                problems.append(
                    f"{where(number)}: code line of {len(shown.expandtabs(4))} characters (at most {MAX_CODE_CHARS}; "
                    "about 82 show at 1280 px): wrap it with `\\` or shorten it"
                )
            continue
        if comment:
            comment = "-->" not in line
            prev = "html"
            continue
        kind = _kind(stripped)
        if kind == "html":
            if GENERATED_START.match(stripped):
                close_prose()
                generated = True
            elif GENERATED_END.match(stripped):
                generated = False
            elif stripped.startswith("<!--") and "-->" not in stripped:
                comment = True

        if kind == "comment_text":
            problems.append(
                f"{where(number)}: line starts with an HTML comment (a `<!-- v ... -->` number, say) followed by text: "
                "Python-Markdown ends the paragraph or list there and the rest runs on; rewrap so the line starts with a word"
            )
            kind = "text"  # reported once, here: the lines after it are read as the author meant them
        # what renders wrong when it follows the line above without a blank line
        if kind == "item" and prev == "text" and not list_led:
            problems.append(
                f"{where(number)}: list item right after a paragraph line: add a blank line before the list (else a run-on paragraph)"
            )
        elif kind == "item" and prev == "fence_end":
            problems.append(f"{where(number)}: list item right after fenced code: add a blank line (else a run-on paragraph)")
        elif kind in ("item", "text") and prev == "table":
            problems.append(f"{where(number)}: text right after a table: add a blank line (else the whole table renders as text)")
        elif kind == "table" and prev in ("text", "item", "fence_end"):
            problems.append(
                f"{where(number)}: table right after a paragraph or list line: add a blank line before it (else it renders as text)"
            )
        elif kind == "fence" and prev in ("text", "table"):
            problems.append(f"{where(number)}: fenced code right after a paragraph line: add a blank line before it")
        elif kind == "text" and prev == "fence_end":
            problems.append(f"{where(number)}: text right after fenced code: add a blank line after the code")
        elif kind == "rule" and stripped.startswith("-") and prev == "text":
            problems.append(f"{where(number)}: '---' right under a line of text makes that line a heading: add a blank line")
        if kind == "item" and list_led and prev != "blank" and (indent - list_indent) % 4:
            problems.append(
                f"{where(number)}: nested list item indented {indent - list_indent} spaces under its list: indent nested lists by 4 "
                "(else they render flat)"
            )

        # paragraphs and list items too long to read
        if kind == "item":
            close_prose()
            if not generated:
                prose = Prose(number, "list item")
        elif kind == "text" and prev not in ("text", "item"):
            close_prose()
            if not generated:
                prose = Prose(number, "paragraph")
        elif kind != "text":
            close_prose()
        if prose and kind in ("item", "text"):
            prose.words += len(LINK_TARGET.sub("]", COMMENT.sub("", stripped)).split()) - (1 if kind == "item" else 0)

        if kind == "fence":
            fence = (FENCE.match(stripped).group(1), indent, number)
        if prev in ("blank", "heading", "admonition", "html", "rule"):
            list_led, list_indent = kind == "item", indent
        prev = kind
    close_prose()
    if fence:
        problems.append(f"{name}:{fence[2]}: fenced code never closed")
    return problems


def test_every_docs_page_meets_the_house_style() -> None:
    problems = []
    for path in documents():
        # A published report's prose is its study's `notes`, part of the study config that the report
        # records: rewording it there makes the report stale until the study reruns. So the reports
        # are held to how they render, not to the paragraph length.
        published = path.parent == REPO / "docs" / "studies" / "reports"
        problems += check(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)), word_limit=not published)
    assert not problems, f"{len(problems)} house-style failures in the docs:\n" + "\n".join(problems)


# ilf is installed from a clone (docs/install.md); a command that asks a package index for it fails.
FROM_AN_INDEX = re.compile(r"pip install\s+(-U\s+)?['\"]?ilf\b(?![-_.\w/])")


def test_no_page_or_message_installs_ilf_from_a_package_index() -> None:
    sources = [*documents(), *sorted((REPO / "ilf").rglob("*.py")), REPO / "scripts" / "setup-env.sh"]
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FROM_AN_INDEX.search(line)
    ]
    assert not found, "ilf is not on a package index; say `bash scripts/setup-env.sh EXTRA` or `pip install -e '.[EXTRA]'`:\n" + "\n".join(
        found
    )
    assert FROM_AN_INDEX.search("pip install 'ilf[cluster]'") and FROM_AN_INDEX.search("pip install ilf")
    assert not FROM_AN_INDEX.search("pip install -e '.[cluster]'") and not FROM_AN_INDEX.search("pip install ilf-wordcount")


# Each snippet: the check's finding (a text in its message, or None) and what Python-Markdown renders,
# so the check is tied to the renderer's real behaviour rather than to a belief about it.
SNIPPETS = [
    ("Text:\n- a\n- b\n", "right after a paragraph line", "<p>Text:\n- a"),
    ("Text:\n1. a\n2. b\n", "right after a paragraph line", "<p>Text:\n1. a"),
    ("**Title**\n* a\n", "right after a paragraph line", "<p><strong>Title</strong>\n* a"),
    ("Text:\n\n- a\n- b\n", None, "<ul>"),
    ("## Heading\n- a\n", None, "<ul>"),
    ("<!-- generated: x -->\n- a\n<!-- /generated -->\n", None, "<ul>"),
    ("- a\nlazy continuation\n- b\n", None, "<li>b</li>"),
    ("!!! note\n    Body:\n    - a\n", "right after a paragraph line", "<p>Body:\n- a</p>"),
    ("!!! note\n    - a\n    - b\n", None, "<li>a</li>"),
    ("- a\n\n    Inside:\n    - n\n", "right after a paragraph line", "<p>Inside:\n- n</p>"),
    ("- a\n    - n\n", None, "<li>a<ul>"),
    ("- a\n  - n\n", "indented 2 spaces", "<li>a</li>\n<li>n</li>"),
    ("  - a\n  - b\n", None, "<li>a</li>\n<li>b</li>"),
    ("- a\n\n    ```\n    code\n    ```\n- b\n", "right after fenced code", "\n- b</p>"),
    ("```\nx\n```\n- a\n", "right after fenced code", "\n- a</p>"),
    ("| a |\n|---|\n| 1 |\ntext\n", "right after a table", "<p>| a |"),
    ("| a | b |\n|---|---|\n| 1 | 2 |\n- x\n", "right after a table", "<td>- x</td>"),
    ("Text:\n| a |\n|---|\n| 1 |\n", "table right after", "<p>Text:\n| a |"),
    ("Text\n---\n", "makes that line a heading", "<h2>Text</h2>"),
    ("Text:\n\n| a |\n|---|\n| 1 |\n\n- x\n", None, "<table>"),
    ("- a\n  <!-- v x -->0.5<!-- /v --> b\n- c\n", "starts with an HTML comment", "<p>0.5 b\n- c</p>"),
    ("- a 0.5\n  <!-- v x -->\n- c\n", None, "<li>\n<p>c</p>"),
    ("Text <!-- v x -->0.5<!-- /v --> more.\n- c\n", "right after a paragraph line", "<p>Text <!-- v x -->0.5"),
]


@pytest.mark.parametrize(("source", "finding", "rendered"), SNIPPETS)
def test_the_check_agrees_with_python_markdown(source: str, finding: str | None, rendered: str) -> None:
    assert rendered in markdown.markdown(source, extensions=EXTENSIONS)
    problems = check(source, "page.md")
    if finding is None:
        assert problems == []
    else:
        assert len(problems) == 1 and finding in problems[0], problems


def test_long_code_lines_and_paragraphs_are_found_where_they_are() -> None:
    long_code = "x" * (MAX_CODE_CHARS + 1)
    page = (
        f"# Page\n\n```bash\n{'y' * MAX_CODE_CHARS}\n{long_code}\n```\n\n"
        f"!!! note\n    ```\n    {'z' * MAX_CODE_CHARS}\n    ```\n\n"
        + " ".join(["word"] * (MAX_WORDS + 1))
        + "\n\n- "
        + "\n  ".join(["twelve words in a list item that goes on and on"] * 12)
        + "\n\n| "
        + " ".join(["cell"] * 200)
        + " |\n|---|\n\n<!-- generated: plugins -->\n"
        + " ".join(["generated"] * 200)
        + "\n<!-- /generated -->\n"
    )
    problems = check(page, "page.md")
    assert problems == [
        f"page.md:5: code line of {MAX_CODE_CHARS + 1} characters (at most {MAX_CODE_CHARS}; "
        "about 82 show at 1280 px): wrap it with `\\` or shorten it",
        f"page.md:13: paragraph of {MAX_WORDS + 1} words (at most {MAX_WORDS}): split it, or make it a list or sub-sections",
        "page.md:15: list item of 132 words (at most 120): split it, or make it a list or sub-sections",
    ]
