"""Core names no plug-in: it reaches them through their registries only. The import contracts
(`lint-imports`, run by scripts/test.sh) keep core from importing a plug-in module; this test
keeps it from branching on a plug-in's name, which no import contract sees."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

from ilf.registry import ALL


def _core_files() -> list[Path]:
    """The modules the import contract calls core (one list, in pyproject.toml)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(c for c in contracts if c["type"] == "forbidden")["source_modules"]
    files = []
    for module in core:
        path = REPO.joinpath(*module.split("."))
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return files


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for element in node.elts for s in _strings(element)]
    return []


def _plugin_comparisons(path: Path, names: dict[str, str]) -> list[str]:
    """Each place in ``path`` that compares something with a registered plug-in's name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            for part in (node.left, *node.comparators):
                found += [f"{path.name}:{node.lineno}: {s!r} ({names[s]})" for s in _strings(part) if s in names]
    return found


def _registered() -> dict[str, str]:
    return {name: registry.kind for registry in ALL for name in registry.index()}


def test_no_core_module_compares_with_the_name_of_a_registered_plugin() -> None:
    names = _registered()
    assert {"labelstudio", "instruct_rm", "labelstudio_round", "judge_win_rate", "rm_best_of_n"} <= set(names)
    files = _core_files()
    assert REPO / "ilf" / "pipeline.py" in files and REPO / "ilf" / "study" / "cells.py" in files
    found = [hit for path in files for hit in _plugin_comparisons(path, names)]
    assert not found, "core modules that branch on a plug-in's name (give the plug-in a hook instead):\n" + "\n".join(found)


def test_the_check_finds_the_special_cases_core_used_to_have(tmp_path: Path) -> None:
    old = tmp_path / "pipeline.py"  # two of the lines this check replaced with hooks
    old.write_text(
        "def uses_judge(config):\n    return 'instruct_rm' in (config.method, *config.also_score)\n\n\n"
        "def snapshot(config):\n    return config.selection.method == 'labelstudio'\n"
    )
    assert _plugin_comparisons(old, _registered()) == ["pipeline.py:2: 'instruct_rm' (selector)", "pipeline.py:6: 'labelstudio' (selector)"]
