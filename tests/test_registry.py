"""The registries: names and help read without importing plug-ins, lookups that import one module,
and plug-ins of separately installed packages found through the ``ilf.plugins`` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from ilf.config import to_plain
from ilf.demo import world
from ilf.records import Sample, write_records
from ilf.study.config import load_study

HEAVY = ("torch", "transformers", "datasets", "sentence_transformers", "trl")


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, so that what it imports is all that is imported."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def test_listing_plug_ins_imports_no_model_library_and_a_lookup_imports_one_module() -> None:
    result = _python(
        textwrap.dedent(f"""
        import contextlib, io, sys
        from ilf.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["plugins"]) == 0
        assert "sdpo" in out.getvalue() and "judge_win_rate" in out.getvalue()
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        from ilf.registry import METHODS, SELECTORS
        assert SELECTORS.help("unit_tests").startswith("Refinements that pass")
        METHODS.get("sft_initial")
        print(sorted(m for m in sys.modules if m.startswith("ilf.methods.")))
        """)
    )
    assert result.returncode == 0, result.stderr
    heavy, imported = result.stdout.strip().splitlines()
    assert heavy == "[]"
    # the module that holds the name, not its neighbours (ranking.py imports the trainers)
    assert imported == "['ilf.methods.supervised']"


def test_commands_that_load_no_model_import_no_model_library(tmp_path: Path) -> None:
    """`ilf config`, `ilf status` (of a run and of a study) and `ilf evaluate --outputs` with a
    metric that needs no model start without torch or transformers."""
    samples = tmp_path / "samples.jsonl"
    posts = world.generate_posts(2, seed=11)
    write_records(
        samples, [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in posts]
    )
    study = tmp_path / "study"
    (study / "cells").mkdir(parents=True)
    config, base, source = load_study(REPO / "ilf" / "studies" / "demo_quick.yaml")
    (study / "study.yaml").write_text(yaml.safe_dump({"source": source, "study": to_plain(config), "base": base}))
    commands = [
        ["config", str(REPO / "experiments" / "offline.yaml")],
        ["status", str(REPO / "experiments" / "offline.yaml"), "--run-dir", str(tmp_path / "run")],
        ["status", str(study)],
        ["evaluate", "--outputs", "references", "--samples", str(samples), "--out", str(tmp_path / "m.json"),
         "--set", "evaluation.metrics=[facts]", "--set", "task.name=facts"],
    ]  # fmt: skip
    result = _python(
        textwrap.dedent(f"""
        import contextlib, io, sys
        from ilf.cli import main
        for command in {commands!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(command) == 0, command
            print(command[0], sorted(m for m in {HEAVY!r} if m in sys.modules))
        """)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["config []", "status []", "status []", "evaluate []"], result.stderr
    assert (tmp_path / "m.json").exists()


def _install_package(tmp_path: Path, distribution: str, module: str, source: str) -> Path:
    """A package of its own whose module ``module`` (``source``) is its ``ilf.plugins`` entry point,
    installed with pip into a folder of its own (with its metadata, where entry points live)."""
    folder = tmp_path / distribution
    package, _, name = module.partition(".")
    (folder / package).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{distribution}"
        version = "0.1"

        [project.entry-points."ilf.plugins"]
        {package} = "{module}"
        """)
    )
    (folder / package / "__init__.py").write_text("")
    (folder / package / f"{name}.py").write_text(textwrap.dedent(source))
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target)]
    installed = subprocess.run([*pip, str(folder)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    return target


def _install_plugin_package(tmp_path: Path) -> Path:
    """A package that declares one metric through the ``ilf.plugins`` entry point."""
    return _install_package(
        tmp_path,
        "ilf-wordcount",
        "ilf_wordcount.metrics",
        """
        from ilf.metrics import Metric
        from ilf.registry import METRICS


        @METRICS.register("longest_words", help="The longest output in words, from a package of its own.")
        class LongestWords(Metric):
            columns = ("longest_words",)

            def score_outputs(self, run, samples, outputs):
                return {"longest_words": max(len(o.text.split()) for o in outputs)}
        """,
    )


def test_a_plug_in_of_a_separately_installed_package_is_listed_and_runs_by_name(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(_install_plugin_package(tmp_path)), "HF_HUB_OFFLINE": "1"}
    listed = subprocess.run([sys.executable, "-m", "ilf", "plugins", "metric"], capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "longest_words        The longest output in words, from a package of its own." in listed.stdout

    samples = tmp_path / "samples.jsonl"
    write_records(
        samples,
        [Sample(id="a", inputs={"post": "p"}, references=["one two three"]), Sample(id="b", inputs={"post": "q"}, references=["four"])],
    )
    out = tmp_path / "metrics.json"
    argv = [
        "evaluate",
        "--samples",
        str(samples),
        "--outputs",
        "references",
        "--out",
        str(out),
        "--set",
        "evaluation.metrics=[longest_words]",
    ]
    scored = subprocess.run([sys.executable, "-m", "ilf", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(out.read_text())["systems"]["references"]["longest_words"] == 3


def test_a_package_whose_plug_ins_cannot_be_imported_breaks_only_itself(tmp_path: Path) -> None:
    target = _install_plugin_package(tmp_path)
    (target / "ilf_wordcount" / "metrics.py").write_text("import a_module_nobody_installed\n")
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    listed = subprocess.run([sys.executable, "-m", "ilf", "plugins", "metric"], capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "rouge" in listed.stdout and "longest_words" not in listed.stdout
    assert (
        f"the plug-in package 'ilf-wordcount' (entry point ilf_wordcount = ilf_wordcount.metrics) failed to import "
        f"at {target / 'ilf_wordcount' / 'metrics.py'}:1, so none of its plug-ins is registered: "
        "ModuleNotFoundError: No module named 'a_module_nobody_installed'"
    ) in listed.stderr


BROKEN = """
    from ilf.registry import SELECTORS
    from ilf.selection import Selector
    from ilf.selection.random_choice import RandomSelector  # one of ilf's own, imported on the way


    @SELECTORS.register("half_registered", help="Registered before its module failed.")
    class HalfRegistered(Selector):
        def score(self, items):
            return [[1.0 for _ in item.candidates] for item in items]


    raise RuntimeError("this module fails after registering a selector")
    """
RAISES_AT = textwrap.dedent(BROKEN).splitlines().index('raise RuntimeError("this module fails after registering a selector")') + 1


def test_a_package_that_fails_after_registering_leaves_nothing_registered_and_is_named_by_the_lookup(tmp_path: Path) -> None:
    target = _install_package(tmp_path, "ilf-half", "ilf_half.plugins", BROKEN)
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    failure = (
        "the plug-in package 'ilf-half' (entry point ilf_half = ilf_half.plugins) failed to import "
        f"at {target / 'ilf_half' / 'plugins.py'}:{RAISES_AT}, so none of its plug-ins is registered: "
        "RuntimeError: this module fails after registering a selector"
    )

    listed = subprocess.run([sys.executable, "-m", "ilf", "plugins"], capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "half_registered" not in listed.stdout and "  random " in listed.stdout
    assert failure in listed.stderr and listed.stderr.count(failure) == 1
    assert f"not loaded: {failure}" in listed.stdout  # in the listing itself, where a missing plug-in is looked for

    config = str(REPO / "experiments" / "offline.yaml")
    named = subprocess.run(
        [sys.executable, "-m", "ilf", "config", config, "--set", "selection.method=half_registered"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert named.returncode == 2
    assert f"(with --set): field 'selection.method': unknown selector 'half_registered'; {failure}; registered: " in named.stderr

    # in one process: nothing of the package in any registry, ilf's own selector it imported kept,
    # and a lookup by name says why the name is missing
    result = _python(
        textwrap.dedent("""
        import json
        from ilf.registry import ALL, SELECTORS, UnknownPlugin, failed_packages
        SELECTORS.names()
        kept = {r.kind: [n for n, e in r._entries.items() if not e.obj.__module__.startswith("ilf.")] for r in ALL}
        try:
            SELECTORS.get("half_registered")
        except UnknownPlugin as err:
            message = str(err)
        print(json.dumps({"kept": kept, "message": message, "random": SELECTORS.get("random").__module__,
                          "failed": [f.package for f in failed_packages()]}))
        """),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kept"] == {r: [] for r in ("data loader", "task", "feedback source", "selector", "metric", "method")}
    assert found["message"].startswith(f"selection.method: unknown selector 'half_registered'; {failure}")
    assert found["random"] == "ilf.selection.random_choice" and found["failed"] == ["ilf-half"]


def test_a_plug_in_of_ones_own_without_its_kinds_interface_is_named_when_the_config_loads(tmp_path: Path, monkeypatch) -> None:
    from ilf.config import load_config
    from ilf.schema import SchemaError

    (tmp_path / "my_plugins.py").write_text(
        textwrap.dedent("""
        from ilf.metrics import Metric
        from ilf.selection.base import Selector
        from ilf.tasks.base import Task

        def pick_longest(items):
            return [[len(c) for c in item.candidates] for item in items]

        class NoScore(Selector):
            pass

        class Longest(Selector):
            def score(self, items):
                return pick_longest(items)

        class HalfTask(Task):
            def initial_prompt(self, sample):
                return sample.inputs["post"]

        class Silent(Metric):
            pass
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = str(REPO / "experiments" / "offline.yaml")
    cases = {
        "selection.method=my_plugins:pick_longest": "field 'selection.method': selector 'my_plugins:pick_longest' (my_plugins.pick_longest) "
        "is a function; a selector is a class deriving from ilf.selection.base.Selector that defines score()",
        "selection.also_score=[random, my_plugins:NoScore]": "field 'selection.also_score[1]': selector 'my_plugins:NoScore' "
        "(my_plugins.NoScore) does not define score(), which every selector defines",
        "task.name=my_plugins:HalfTask": "task 'my_plugins:HalfTask' (my_plugins.HalfTask) does not define refine_prompt()",
        "evaluation.metrics=[rouge, my_plugins:Silent]": "field 'evaluation.metrics[1]': metric 'my_plugins:Silent' (my_plugins.Silent) "
        "does not define score_outputs() or score_round()",
    }
    for override, message in cases.items():
        with pytest.raises(SchemaError) as caught:
            load_config(config, [override])
        assert message in str(caught.value), str(caught.value)
    assert load_config(config, ["selection.method=my_plugins:Longest"]).selection.method == "my_plugins:Longest"
