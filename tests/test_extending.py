"""docs/EXTENDING.md runs as written: a task, a feedback source, a selector and a metric from a package outside ilf."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from ilf.cli import main
from ilf.config import ConfigError, load_config
from ilf.registry import ALL

DOC = REPO / "docs" / "EXTENDING.md"


def _write_example(folder: Path) -> list[str]:
    text = DOC.read_text()
    for block in re.findall(r"```(?:python|json|yaml)\n(.*?)```", text, flags=re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"# file: (\S+)", first.strip())
        assert match, f"a code block of {DOC.name} does not name its file: {first!r}"
        target = folder / match.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    commands = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[0].strip().splitlines()
    return commands


@pytest.mark.slow
def test_the_extending_example_runs_as_written(tmp_path: Path, capsys) -> None:
    commands = _write_example(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    # The custom selector picked, by its own score, and the custom task's prompts were used.
    sys.path.insert(0, str(tmp_path))
    try:
        from my_ilf_plugins.methods import ChangedOnlyILF
        from my_ilf_plugins.selectors import AddedWordsSelector, words

        # their own settings, under the names they declare, checked when the config loads
        config = load_config(tmp_path / "my_run.yaml")
        assert AddedWordsSelector.from_config(config).min_word_length == 2
        assert ChangedOnlyILF.options(config).min_new_words == 1
        with pytest.raises(ConfigError, match=r"'selection_options.added_words.min_word_lenght': unknown key .*'min_word_length'"):
            load_config(tmp_path / "my_run.yaml", ["selection_options.added_words.min_word_lenght=3"])
        assert main(["config", "--fields", str(tmp_path / "my_run.yaml")]) == 0
        assert "selection_options.added_words.min_word_length" in capsys.readouterr().out
    finally:
        sys.path.remove(str(tmp_path))
    run = tmp_path / "runs" / "short_answers"
    selections = [json.loads(line) for line in (run / "selected.jsonl").read_text().splitlines()]
    assert len(selections) == 4
    for selection in selections:
        assert selection["selector"] == "my_ilf_plugins.selectors:AddedWordsSelector"
        ours = [c["scores"][selection["selector"]] for c in selection["candidates"]]
        assert all(set(c["scores"]) == {selection["selector"], "random"} for c in selection["candidates"])
        tied = [i for i, score in enumerate(ours) if score == max(ours)]  # the pick is by our score; a tie goes to random's
        assert selection["index"] == max(tied, key=lambda i: selection["candidates"][i]["scores"]["random"])
    feedback, output = "spiders have eight legs, not six.", "six"
    assert AddedWordsSelector().score(
        [type("Item", (), {"feedback": feedback, "output": output, "candidates": ["eight legs", "ten"]})()]
    ) == [[1.0, 0.0]]
    assert words("Eight, legs.") == {"eight", "legs"}
    # The custom source critiqued every draft (each misses its reference), the custom metric scored every system.
    critiques = [json.loads(line) for line in (run / "feedback.jsonl").read_text().splitlines()]
    assert [c["text"] for c in critiques] == [
        "Wrong: the answer is Paris.",
        "Wrong: the answer is eight.",
        "Wrong: the answer is Mars.",
        "Wrong: the answer is carbon dioxide.",
    ]
    # The custom loader read the questions (their drafts are the outputs critiqued); the custom
    # method imitated the picks that changed the answer, with its own option.
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [(s["id"], s["initial_output"], s["references"]) for s in samples][:2] == [("q1", "Lyon", ["Paris"]), ("q2", "six", ["eight"])]
    trained = json.loads((run / ".ilf" / "stages" / "finetune.json").read_text())["summary"]
    before = {s["id"]: set(s["initial_output"].lower().split()) for s in samples}
    changed = [x for x in selections if set(x["text"].lower().split()) - before[x["sample_id"]]]
    assert trained["imitated"] == len(changed) and trained.get("steps", 0) >= (1 if changed else 0)
    assert json.loads((run / "metrics.json").read_text())["method"] == "my_ilf_plugins.methods:ChangedOnlyILF"
    systems = json.loads((run / "metrics.json").read_text())["systems"]
    assert systems and all(0.0 <= row["contains_answer"] <= 1.0 and "contains_answer_sem" in row for row in systems.values())
    config = (run / "config.yaml").read_text()
    assert "my_ilf_plugins.tasks:ShortAnswerTask" in config
    assert (tmp_path / "runs" / "short_answers_study" / "report.md").exists()
    assert len(json.loads((tmp_path / "runs" / "short_answers_study" / "cells.json").read_text())) == 4


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
