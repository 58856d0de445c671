"""The docs site as a reader sees it: built with mkdocs, every page opened in Chromium at 1280x900.

Fails on what is cut off or garbled on screen: a code block or table wider than the content column
(it scrolls, so its end is hidden), a paragraph that holds a run-on list (Markdown without a blank
line before the list), an identifier in a table broken mid-word, an image or anything else wider
than the column. Each page's full-length screenshot is saved so that a person can look: into
``$ILF_DOCS_RENDER_DIR`` if set, else into the test's temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

VIEWPORT = {"width": 1280, "height": 900}

# Everything in the content column that does not fit it, as [what, detail] pairs; run in the page.
MEASURE = r"""() => {
  const found = [];
  const column = document.querySelector('.md-content__inner');
  const short = (text, n = 70) => text.replace(/\s+/g, ' ').trim().slice(0, n);
  // where a wrapped element's text goes on to the next line between two letters, digits or
  // underscores ("method_optio|ns"), or null; a break at a space or after a hyphen is how text wraps
  const brokenWord = element => {
    const text = document.createTreeWalker(element, NodeFilter.SHOW_TEXT), range = document.createRange();
    let node, top = null, before = '';
    while ((node = text.nextNode())) {
      for (let k = 0; k < node.length; k++) {
        range.setStart(node, k);
        range.setEnd(node, k + 1);
        const box = range.getClientRects()[0];
        if (!box) continue;
        const ch = node.data[k];
        if (top !== null && box.top > top + 2 && /\w/.test(before) && /\w/.test(ch)) return `${before}|${ch}`;
        top = box.top;
        before = ch;
      }
    }
    return null;
  };
  document.querySelectorAll('.md-typeset pre > code').forEach((code, i) => {
    const over = code.scrollWidth - code.clientWidth;
    if (over > 1) {
      const longest = code.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      found.push(['code block cut off', `code block ${i + 1}: ${over} px too wide, longest line ` +
                  `${longest.length} characters: "${short(longest, 60)}"`]);
    }
  });
  document.querySelectorAll('.md-typeset table').forEach((table, i) => {
    const wrap = table.closest('.md-typeset__scrollwrap') || table;
    const over = Math.max(wrap.scrollWidth - wrap.clientWidth, table.getBoundingClientRect().right - column.getBoundingClientRect().right);
    if (over > 1) {
      const head = [...table.querySelectorAll('th')].map(th => short(th.textContent, 20)).join(' | ');
      found.push(['table scrolls', `table ${i + 1}: ${Math.round(over)} px too wide (${head})`]);
    }
    table.querySelectorAll('td code, th code').forEach(code => {
      const at = code.getClientRects().length > 1 && brokenWord(code);
      if (at) found.push(['identifier broken', `table ${i + 1}: \`${short(code.textContent, 50)}\` is broken mid-word at "${at}"`]);
    });
  });
  document.querySelectorAll('.md-typeset p').forEach(p => {
    if (p.closest('pre')) return;
    const m = p.textContent.match(/\n\s*([-*+]|\d+\.)\s+\S/);
    if (m) found.push(['run-on list', `paragraph "${short(p.textContent, 50)}..." holds a list written without a blank line before it`]);
  });
  document.querySelectorAll('.md-typeset img').forEach(img => {
    const over = img.getBoundingClientRect().right - column.getBoundingClientRect().right;
    if (over > 1) found.push(['image too wide', `${img.getAttribute('src')}: ${Math.round(over)} px past the column`]);
  });
  // anything else past the column's edge (Material's table wrapper reaches 0.8rem past it, by design,
  // for its scroll shadow; an inline code span wrapped at a line's end juts out by its padding)
  const edge = column.getBoundingClientRect().right + 8;
  column.querySelectorAll('*').forEach(e => {
    if (e.closest('pre, .md-typeset__scrollwrap, table, img') || e.querySelector('img') || e.getBoundingClientRect().right <= edge) return;
    if (e.parentElement && e.parentElement !== column && e.parentElement.getBoundingClientRect().right > edge) return;
    found.push(['too wide', `<${e.tagName.toLowerCase()}> "${short(e.textContent, 50)}" reaches ${Math.round(e.getBoundingClientRect().right - edge + 8)} px past the column`]);
  });
  if (document.documentElement.scrollWidth > window.innerWidth)
    found.push(['page too wide', `the page scrolls sideways by ${document.documentElement.scrollWidth - window.innerWidth} px`]);
  return found;
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The docs built with ``mkdocs build --strict`` and served on a free loopback port: (URL, folder)."""
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def source_of(page: str) -> str:
    """The Markdown file a built page came from (``studies/demo/`` is docs/studies/demo.md)."""
    if page in ("", "/"):
        return "docs/index.md"
    stem = page.strip("/")
    return f"docs/{stem}/index.md" if (REPO / "docs" / stem / "index.md").exists() else f"docs/{stem}.md"


def pages(folder: Path) -> list[str]:
    """Every page of the built site, as a path under its root (``""`` is the home page)."""
    found = sorted(str(p.parent.relative_to(folder)) + "/" for p in folder.rglob("index.html"))
    return ["" if p == "./" else p for p in found]


def test_every_page_fits_the_content_column_at_1280_px(site: tuple[str, Path], browser, tmp_path: Path) -> None:
    url, folder = site
    every = pages(folder)
    markdown_files = sorted((REPO / "docs").rglob("*.md"))
    assert len(every) == len(markdown_files), f"{len(every)} pages built from {len(markdown_files)} Markdown files"
    shots = Path(os.environ.get("ILF_DOCS_RENDER_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    problems: dict[str, list[str]] = {}
    page = browser.new_page(viewport=VIEWPORT)
    for path in every:
        page.goto(f"{url}/{path}", wait_until="load")
        page.wait_for_function("() => document.querySelector('.md-content__inner') !== null")
        found = page.evaluate(MEASURE)
        # JPEG: half the time of PNG for a whole page, and plenty for a person to see what is cut off
        page.screenshot(path=str(shots / ((path.strip("/").replace("/", "__") or "index") + ".jpg")), full_page=True, quality=80)
        if found:
            problems[f"{source_of(path)} (/{path})"] = [f"{what}: {detail}" for what, detail in found]
    page.close()
    count = sum(len(v) for v in problems.values())
    report = "\n".join(f"{name}: {len(lines)}\n" + "\n".join(f"    {line}" for line in lines) for name, lines in problems.items())
    assert not problems, (
        f"{count} things do not fit at 1280x900 on {len(problems)} of {len(every)} pages (screenshots in {shots}):\n{report}"
    )
