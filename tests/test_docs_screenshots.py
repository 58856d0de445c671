"""The Label Studio screenshots in the docs: each page shows the labelling area, cropped from the
full screenshot, and links to the full one.

The browser tests write the full screenshots (``ILF_DOCS_SCREENSHOTS=1``); ``crop_to_labelling_area``
makes the cropped copy from one, so a crop that no longer matches its full screenshot fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO
from PIL import Image, ImageChops

SCREENSHOTS = REPO / "docs" / "assets" / "screenshots"
PAGES = sorted((REPO / "docs").rglob("*.md"))
BORDER = (225, 222, 213)  # Label Studio's panel borders (light theme)
BACKGROUND = (253, 253, 252)  # the labelling area's background
MARGIN = 16  # pixels of background kept below the last thing drawn
SHOWN = re.compile(r"\[!\[[^\]]*\]\((?P<crop>[^)]+)\)\]\((?P<full>[^)]+)\)")


def crop_path(full: Path) -> Path:
    return full.with_name(f"{full.stem}-crop{full.suffix}")


def is_border(line: list[tuple[int, int, int]]) -> bool:
    """A panel border: a line of the border colour, but for a corner or two where borders meet."""
    return sum(pixel == BORDER for pixel in line) >= 0.98 * len(line)


def crop_to_labelling_area(image: Image.Image, name: str = "screenshot") -> Image.Image:
    """The labelling area of a Label Studio screenshot: between the task list and the side panels,
    from the annotation tabs down to the last thing drawn above the Submit bar."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    pixels = rgb.load()
    rows = range(height // 10, height - height // 10)
    columns = [x for x in range(width) if is_border([pixels[x, y] for y in rows])]
    # the task list's right border and the side panels' left border: the widest gap between border columns
    gaps = [(right - left, left, right) for left, right in zip(columns, columns[1:], strict=False)]
    if not gaps or max(gaps)[0] < width // 4:
        raise ValueError(f"{name}: no labelling area found (no two panel borders over {width // 4} px apart)")
    _, left, right = max(gaps)
    inside = range(left + 1, right)
    borders = [y for y in range(height) if is_border([pixels[x, y] for x in inside])]
    if len(borders) < 2:
        raise ValueError(f"{name}: no labelling area found (no header and Submit bar borders between x={left} and x={right})")
    top, bar = borders[0], borders[-1]
    last = next((y for y in range(bar - 1, top, -1) if any(pixels[x, y] != BACKGROUND for x in range(left + 3, right - 2))), top)
    return image.crop((left - 1, top, right + 1, min(last + 1 + MARGIN, bar)))


def shown_on_pages() -> list[tuple[Path, Path, Path]]:
    """(page, crop, full) for every clickable screenshot ``[![alt](crop)](full)`` of the docs."""
    found = []
    for page in PAGES:
        for match in SHOWN.finditer(page.read_text()):
            found.append((page, (page.parent / match["crop"]).resolve(), (page.parent / match["full"]).resolve()))
    return found


FULL = sorted(path for path in SCREENSHOTS.glob("*.png") if not path.stem.endswith("-crop"))


@pytest.mark.parametrize("full", FULL, ids=lambda path: path.name)
def test_each_crop_is_the_labelling_area_of_its_full_screenshot(full: Path) -> None:
    crop = crop_path(full)
    assert crop.is_file(), f"{crop.relative_to(REPO)} is missing: crop {full.name} with crop_to_labelling_area"
    with Image.open(full) as image, Image.open(crop) as saved:
        expected = crop_to_labelling_area(image, full.name).convert("RGB")
        assert saved.size == expected.size, f"{crop.name}: {saved.size}, but the labelling area of {full.name} is {expected.size}"
        assert ImageChops.difference(saved.convert("RGB"), expected).getbbox() is None, (
            f"{crop.name} differs from {full.name}'s labelling area"
        )
        assert saved.width < 0.7 * image.width, f"{crop.name}: the side panels were not cropped away"


def test_the_pages_show_each_crop_linked_to_its_full_screenshot() -> None:
    shown = shown_on_pages()
    assert {full for _, _, full in shown} == set(FULL), "every screenshot is shown on a page, as its crop linked to it"
    for page, crop, full in shown:
        assert crop == crop_path(full), f"{page.relative_to(REPO)}: {crop.name} shown for {full.name}"
    for page in PAGES:  # a full screenshot shown as an image would be shrunk to half its size
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            if "screenshots/" in target:
                assert target.endswith("-crop.png"), f"{page.relative_to(REPO)}: shows {target} uncropped"
