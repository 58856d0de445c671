"""What a plug-in author writes beside their code: options with list, dict or set defaults, and a
module of their own named by ``module.path:Name`` that fails to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

from ilf.config import field_help, option
from ilf.schema import build


def test_a_list_dict_or_set_default_is_made_afresh_for_each_instance() -> None:
    @dataclass
    class Options:
        stop_words: list[str] = option(["the", "is"], "Given as the default.")
        weights: dict[str, list[float]] = option({"a": [1.0]}, "Nested: copied to the bottom.")
        tags: set[str] = option({"x"}, "A set.")
        made: list[str] = option(factory=lambda: ["made"], help="Made by a function.")
        plain: int = option(3, "Shared safely: an int cannot change.")

    first, second = Options(), Options()
    first.stop_words.append("a")
    first.weights["a"].append(2.0)
    first.tags.add("y")
    first.made.append("again")
    assert second == Options() == Options(["the", "is"], {"a": [1.0]}, {"x"}, ["made"], 3)
    assert Options().stop_words is not Options().stop_words
    # a config that leaves them out gets the defaults, and one that sets them its own values
    assert build(Options, {}).stop_words == ["the", "is"] and build(Options, {}).made == ["made"]
    assert build(Options, {"stop_words": ["an"]}).stop_words == ["an"]
    rows = {key: default for key, default, _ in field_help(Options)}
    assert rows["stop_words"] == '["the", "is"]' and rows["weights"] == '{"a": [1.0]}' and rows["made"] == '["made"]'


def test_a_module_of_ones_own_that_fails_to_import_is_named_with_its_line(tmp_path: Path) -> None:
    source = textwrap.dedent("""
        from ilf.selection import Selector


        class Longest(Selector):
            def score(self, items):
                return [[len(c) for c in item.candidates] for item in items]


        limit = undefined_name
        """)
    (tmp_path / "my_selectors.py").write_text(source)
    line = source.splitlines().index("limit = undefined_name") + 1
    config = str(REPO / "experiments" / "offline.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "ilf", "config", config, "--set", "selection.method=my_selectors:Longest"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": ""},
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert (
        f"selection.method: cannot import 'my_selectors' for 'my_selectors:Longest' (failed at {tmp_path / 'my_selectors.py'}:{line}): "
        "NameError: name 'undefined_name' is not defined"
    ) in done.stderr
