"""docs/EXTENDING.md runs as written: its package of plug-ins (a data loader, a task, a feedback
source, a selector with a list option, a metric and a method) is installed through the
``ilf.plugins`` entry point, listed, and run by name.

The page's install command, ``python -m pip install -e ./my-ilf-plugins``, runs as written in a
throwaway virtual environment that sees the project's own (its site-packages are added through a
``.pth`` file), so the package never enters the project's environment, not even while the test
runs: other processes keep seeing only ilf's own plug-ins, and nothing is left to uninstall when
the test dies. The only adaptations are in the environment the commands run in: that venv's
``bin`` first on PATH (with an ``ilf`` script there), and pip told to work offline
(``PIP_NO_INDEX``, and no build isolation, so it builds with the setuptools already installed).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from test_docs_commands import blocks, commands

from ilf.cli import main
from ilf.registry import ALL

DOC = REPO / "docs" / "EXTENDING.md"
PACKAGE_PLUGINS = {  # what the page's package registers: kind -> name
    "data loader": "questions",
    "task": "short_answer",
    "feedback source": "reference_critic",
    "selector": "added_words",
    "metric": "contains_answer",
    "method": "changed_only",
}


def _write_example(folder: Path) -> list[list[str]]:
    """Every code block of the page into the file its first line names; the commands of the
    shell blocks this test is marked to run, block by block."""
    text = DOC.read_text()
    for block in re.findall(r"```(?:python|json|yaml|toml)\n(.*?)```", text, flags=re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"# file: (\S+)", first.strip())
        assert match, f"a code block of {DOC.name} does not name its file: {first!r}"
        target = folder / match.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    marked = [b for b in blocks(DOC) if b.mark == "test" and b.mark_arg == "tests/test_extending.py"]
    return [commands(block) for block in marked]


def _environment(folder: Path) -> dict[str, str]:
    """A virtual environment of its own under ``folder`` that sees the project's packages, and the
    environment variables that make it the one the page's commands run in."""
    venv = folder / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    project_site = sysconfig.get_paths()["purelib"]
    # addsitedir, not a bare path: the project's own .pth files (ilf's editable install) are read too
    (site / "_project_environment.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
    script = venv / "bin" / "ilf"  # what installing ilf there would write
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom ilf.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling of --no-build-isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _run(command: str, folder: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"`{command}` exited with {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], list[str], dict[str, str]]:
    """The page's files written, its package installed by the first block's commands (their
    outputs by command), and the second block's commands, to run."""
    folder = tmp_path_factory.mktemp("extending")
    first, second = _write_example(folder)
    env = _environment(folder)
    printed = {command: _run(command, folder, env) for command in first}
    return folder, env, second, printed


def _in_the_example(folder: Path, env: dict[str, str], code: str) -> object:
    """What ``code`` prints as JSON, run by the example's interpreter in its folder."""
    done = subprocess.run(["python", "-c", textwrap.dedent(code)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_page_names_every_registry_and_an_entry_point_package() -> None:
    text = DOC.read_text()
    for registry in ALL:
        package = "/".join(registry.package.split(".")) + "/"
        assert f"`{registry.variable}`: **{registry.kind}s**" in text and f"`{package}`" in text, registry.variable
    assert '[project.entry-points."ilf.plugins"]' in text and "python -m pip install -e ./my-ilf-plugins" in text
    assert "option(factory=" in text and "factory=lambda:" in text  # how a list option is declared


def test_the_example_package_installs_and_its_plug_ins_are_listed_with_their_help(example) -> None:
    folder, env, _, printed = example
    assert not [p for p in importlib.metadata.entry_points(group="ilf.plugins") if p.value == "my_ilf_plugins"], (
        "the example was installed into the project's environment"
    )
    listing = printed["ilf plugins"]
    helps = _in_the_example(
        folder,
        env,
        """
        import json
        from ilf.registry import ALL
        print(json.dumps({r.kind: {n: [r.help(n), r.get(n).__module__] for n in r.names()} for r in ALL}))
        """,
    )
    for kind, name in PACKAGE_PLUGINS.items():
        help_text, module = helps[kind][name]
        assert module.startswith("my_ilf_plugins."), (kind, name, module)
        assert help_text and f"  {name:20s} {help_text}\n" in listing, (kind, name)
    options = printed["ilf plugins added_words"]
    assert options.startswith("added_words (selector, selection.method): Share of the words a refinement adds")
    assert 'selection_options.added_words.stop_words (["the", "is"]): Words never counted, however long.' in options
    assert "selection_options.added_words.min_word_length (1): Shorter words are not counted." in options
    assert "stop_words:\n    - wrong\n    - the\n    - is\n" in printed["ilf config my_run.yaml"]


def test_the_list_option_reaches_the_selector_and_is_checked_when_the_config_loads(example) -> None:
    folder, env, _, _ = example
    found = _in_the_example(
        folder,
        env,
        """
        import json
        from types import SimpleNamespace
        from ilf.config import ConfigError, load_config
        from ilf.registry import SELECTORS

        selector = SELECTORS.get("added_words")
        item = SimpleNamespace(
            feedback="Wrong: the answer is eight.", output="six",
            candidates=["the eight", "is the", "wrong legs"],
        )
        errors = []
        for override in ["selection_options.added_words.stop_word=[a]", "selection_options.added_words.stop_words=3"]:
            try:
                load_config("my_run.yaml", [override])
            except ConfigError as err:
                errors.append(str(err))
        print(json.dumps({
            "configured": selector.from_config(load_config("my_run.yaml")).score([item]),
            "without": selector(2).score([item]),
            "built": sorted(selector.from_config(load_config("my_run.yaml")).stop_words),
            "fresh": selector.Options().stop_words is not selector.Options().stop_words,
            "errors": errors,
        }))
        """,
    )
    # without stop words 'is the' and 'wrong' count; with the config's ('wrong' is not a default) they do not
    assert found["built"] == ["is", "the", "wrong"]
    assert found["configured"] == [[1.0, 0.0, 0.0]] and found["without"] == [[1.0, 1.0, 0.5]]
    assert found["fresh"]
    unknown, wrong_type = found["errors"]
    assert "'selection_options.added_words.stop_word': unknown key 'stop_word' (did you mean 'stop_words'?)" in unknown
    assert "selection_options.added_words.stop_words" in wrong_type


def test_the_example_package_broken_as_the_page_shows_registers_nothing_and_is_named(example) -> None:
    folder, env, _, _ = example
    text = DOC.read_text()
    section = text[text.index("### When a package fails to import") :]
    shown = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1)
    warning = " ".join(shown.split())  # the page wraps the one line the command prints
    selectors = folder / "my-ilf-plugins" / "my_ilf_plugins" / "selectors.py"
    source = selectors.read_text()
    broken = source.replace("min_word_length: int = option(", "min_word_length: int = opton(")
    assert broken != source
    selectors.write_text(broken)  # the install is editable: the next command imports this
    try:
        listed = subprocess.run("ilf plugins", shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        loaded = subprocess.run("ilf config my_run.yaml", shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    finally:
        selectors.write_text(source)
    assert listed.returncode == 0 and not [name for name in PACKAGE_PLUGINS.values() if f"  {name} " in listed.stdout]
    assert warning.replace(".../", f"{selectors.parent}/") in listed.stderr
    assert loaded.returncode == 2
    said = warning.removeprefix("WARNING ilf.registry: ")
    assert f"field 'method': unknown method 'changed_only'; {said.replace('.../', f'{selectors.parent}/')}" in loaded.stderr


@pytest.mark.slow
def test_the_extending_example_runs_as_written(example) -> None:
    folder, env, second, _ = example
    printed = {command: _run(command, folder, env) for command in second}
    run = folder / "runs" / "short_answers"

    # The selector picked by its own score (a tie goes to random's), and its scores are what the
    # package's selector computes with the config's options, stop words included.
    selections = [json.loads(line) for line in (run / "selected.jsonl").read_text().splitlines()]
    assert len(selections) == 4
    for selection in selections:
        assert selection["selector"] == "added_words"
        assert all(set(c["scores"]) == {"added_words", "random"} for c in selection["candidates"])
        ours = [c["scores"]["added_words"] for c in selection["candidates"]]
        tied = [i for i, score in enumerate(ours) if score == max(ours)]
        assert selection["index"] == max(tied, key=lambda i: selection["candidates"][i]["scores"]["random"])
    rescored = _in_the_example(
        folder,
        env,
        """
        import json
        from types import SimpleNamespace
        from ilf.config import load_config
        from ilf.registry import SELECTORS

        refinements = [json.loads(line) for line in open("runs/short_answers/refinements.jsonl")]
        items = [
            SimpleNamespace(output=r["output"], feedback=r["feedback"], candidates=[c["text"] for c in r["candidates"]])
            for r in refinements
        ]
        selector = SELECTORS.get("added_words").from_config(load_config("my_run.yaml"))
        print(json.dumps(dict(zip([r["sample_id"] for r in refinements], selector.score(items)))))
        """,
    )
    for selection in selections:
        assert [c["scores"]["added_words"] for c in selection["candidates"]] == rescored[selection["sample_id"]]
    reads = json.loads((run / ".ilf" / "stages" / "select.json").read_text())["reads"]
    assert ["options", ["selection_options", "added_words"], {"min_word_length": 2, "stop_words": ["wrong", "the", "is"]}] in reads
    # the package's class, by the hash of its code: an edit to it reruns the stage
    probe = next(value for kind, key, value in reads if kind == "probe" and key == ["plugin", "selector", "added_words"])
    assert probe.startswith("my_ilf_plugins.selectors:AddedWordsSelector@")

    # The loader read the questions, the critic critiqued every draft (each misses its reference).
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    firsts = [(s["id"], s["initial_output"], s["references"]) for s in samples][:2]
    assert firsts == [("train-0", "Lyon", ["Paris"]), ("train-1", "six", ["eight"])]
    critiques = [json.loads(line)["text"] for line in (run / "feedback.jsonl").read_text().splitlines()]
    assert critiques == [f"Wrong: the answer is {gold}." for gold in ("Paris", "eight", "Mars", "CO2")]

    # The method imitated the picks that changed the answer, with its own option.
    trained = json.loads((run / ".ilf" / "stages" / "finetune.json").read_text())["summary"]
    before = {s["id"]: set(s["initial_output"].lower().split()) for s in samples}
    changed = [x for x in selections if set(x["text"].lower().split()) - before[x["sample_id"]]]
    assert trained["imitated"] == len(changed) and trained.get("steps", 0) >= (1 if changed else 0)

    # The metric scored every system, and its column is in the run's table and the study's report.
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "changed_only"
    rows = metrics["systems"].values()
    assert rows and all(0.0 <= row["contains_answer"] <= 1.0 and "contains_answer_sem" in row for row in rows)
    assert "contains_answer" in metrics["table"].splitlines()[0]
    assert "task:\n  name: short_answer" in (run / "config.yaml").read_text()
    status = printed["ilf status my_run.yaml --run-dir runs/short_answers"]
    assert all(stage in status for stage in ("select", "finetune", "evaluate")), status
    study = folder / "runs" / "short_answers_study"
    cells = json.loads((study / "cells.json").read_text())
    assert len(cells) == 4 and {c["method"] for c in cells} == {"ilf", "changed_only"}
    assert "contains_answer" in (study / "report.md").read_text()


def test_plugins_lists_every_kind_from_the_registry(capsys) -> None:
    assert main(["plugins"]) == 0
    printed = capsys.readouterr().out
    for registry in ALL:
        assert f"{registry.kind}s ({registry.config_key}):" in printed
        for entry in registry.entries():
            assert entry.help, f"{registry.kind} {entry.name} has no help"
            assert f"  {entry.name} " in printed
    assert "reward_model" in printed and "facts_world" in printed and "rm_best_of_n" in printed


def test_every_config_section_has_help(capsys) -> None:
    assert main(["config", "--fields"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = {line.split()[0] for line in lines}
    for key in (
        "study.methods",
        "study.sizes",
        "world.preference",
        "pretraining.steps",
        "reward.best_of_n",
        "method_options.dpo.beta",
        "method_options.rloo.max_steps",
        "outputs.sampling.temperature",
        "evaluation.metrics",
        "method",
    ):
        assert key in keys, key
    assert all(len(line.split(None, 2)) == 3 for line in lines), "a field without help"


def test_a_config_naming_a_missing_plugin_fails_with_one_line(tmp_path: Path, capsys) -> None:
    offline = str(REPO / "experiments" / "offline.yaml")
    assert main(["run", offline, "--run-dir", str(tmp_path / "r"), "--set", "selection.method=embeding"]) == 2
    err = capsys.readouterr().err
    assert "field 'selection.method': unknown selector 'embeding' (did you mean 'embedding'?)" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # caught when the config loads, before any stage
    assert main(["config", offline, "--set", "selection.also_score=[random, embeding]"]) == 2  # `ilf config` checks names too
    assert "field 'selection.also_score[1]': unknown selector 'embeding'" in capsys.readouterr().err
    assert main(["run", offline, "--run-dir", str(tmp_path / "r"), "--set", "task.name=nowhere.tasks:Nothing"]) == 2
    assert "cannot import 'nowhere.tasks'" in capsys.readouterr().err
