"""Mistakes in user input (a misspelt key, a file that is not UTF-8, a model that is not there)
fail with one line that names where the problem is and what to do about it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.config import ConfigError, ModelConfig, load_config
from ilf.data import slf5k, tabular
from ilf.errors import IlfError
from ilf.models import ModelLoadError, load_model, save_model, tiny_model
from ilf.records import Feedback, RecordError, Refinements, Sample, iter_text_lines, read_records, write_records
from ilf.registry import TASKS
from ilf.schema import SchemaError

# --- misspelt keys --------------------------------------------------------------------------------


def test_misspelt_config_key_names_the_closest_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("refine:\n  num_candidate: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: field 'refine.num_candidate': unknown key 'num_candidate' (did you mean 'num_candidates'?)"
    assert (str(err.value.path), err.value.field) == (str(path), "refine.num_candidate")


def test_misspelt_override_and_section_name_the_closest_key() -> None:
    with pytest.raises(ConfigError, match=r"field 'policy.name_or_pth': unknown key 'name_or_pth' \(did you mean 'name_or_path'\?\)$"):
        load_config(None, ["policy.name_or_pth=tiny:gpt2"])
    with pytest.raises(ConfigError, match=r"field 'refin': unknown key 'refin' \(did you mean 'refine'\?\)$"):
        load_config(None, ["refin.num_candidates=3"])


def test_unknown_key_with_no_close_match_lists_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["refine.zzz=1"])
    assert str(err.value).endswith("field 'refine.zzz': unknown key 'zzz' (expected one of: num_candidates, sampling, use_feedback)")


def test_misspelt_key_in_a_record_names_the_closest_key(tmp_path: Path) -> None:
    path = tmp_path / "refinements.jsonl"
    path.write_text(json.dumps({"sample_id": "s", "candidates": [{"txt": "a"}]}) + "\n")
    with pytest.raises(RecordError) as err:
        read_records(path, Refinements)
    assert str(err.value) == f"{path}:1: field 'candidates[0].txt': unknown key 'txt' (did you mean 'text'?)"


# --- files that are not UTF-8 ---------------------------------------------------------------------


def _write_jsonl_with_bad_byte(path: Path, newline: bytes = b"\n") -> None:
    lines = [
        json.dumps({"sample_id": "a", "text": "fine"}).encode(),
        json.dumps({"sample_id": "b", "text": "also fine"}).encode(),
        b'{"sample_id": "c", "text": "caf\xe9 \xe2\x82\xac \xff"}',  # latin-1 é, a valid €, then 0xff
    ]
    path.write_bytes(newline.join(lines) + newline)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_non_utf8_jsonl_names_file_line_byte_and_column(tmp_path: Path, newline: bytes) -> None:
    path = tmp_path / "feedback.jsonl"
    _write_jsonl_with_bad_byte(path, newline)
    with pytest.raises(RecordError) as err:
        read_records(path, Feedback)
    assert isinstance(err.value, SchemaError)
    assert (err.value.path, err.value.line) == (path, 3)
    assert str(err.value) == f"{path}:3: not valid UTF-8 (byte 0xe9 at column 32)"


def test_bad_byte_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_bytes('{"id": "é€", "inputs": {}}\n'.encode() + b'{"id": "\xe2\x82\xac\xe2\x82"}\n')  # a € then a cut-off €
    with pytest.raises(RecordError) as err:
        read_records(path, Sample)
    assert str(err.value) == f"{path}:2: not valid UTF-8 (byte 0xe2 at column 10)"


def test_utf8_lines_keep_their_endings_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("a\r\nb\rc\n\nd€".encode())
    assert list(iter_text_lines(path)) == [(1, "a\r\n"), (2, "b\r"), (3, "c\n"), (4, "\n"), (5, "d€")]


def test_non_utf8_jsonl_in_the_slf5k_loader(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"id": "1", "title": "t", "post": "p"}\n\n{"id": "2", "title": "\x80", "post": "p"}\n')
    with pytest.raises(RecordError, match=r"train\.jsonl:3: not valid UTF-8 \(byte 0x80 at column 23\)$"):
        slf5k.load(path)


def test_non_utf8_jsonl_in_the_tabular_loader(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"q": "ok"}\n{"q": "caf\xe9"}\n')
    with pytest.raises(RecordError, match=r"train\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 11\)$"):
        tabular.load(path, {}, fmt="jsonl")


def test_non_utf8_csv_names_the_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    # The quoted field spans two lines, so the bad byte is on line 4 though it is the third row.
    path.write_bytes(b'question,answer\r\nq1,a1\r\n"q2\r\nmore",a2\r\nq3,caf\xe9\r\n')
    with pytest.raises(RecordError) as err:
        tabular.load(path, {}, fmt="csv")
    assert str(err.value) == f"{path}:5: not valid UTF-8 (byte 0xe9 at column 7)"


def test_valid_csv_still_loads_with_crlf_and_multiline_fields(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes('question,answer\r\nq1,a€\r\n"q2\r\nmore",a2\r\n'.encode())
    data = tabular.load(path, {"initial_output": "answer"}, fmt="csv")
    assert [(s.id, s.inputs, s.initial_output) for s in data.samples] == [
        ("train-2", {"question": "q1"}, "a€"),
        ("train-4", {"question": "q2\r\nmore"}, "a2"),
    ]


def test_cli_reports_non_utf8_input_in_one_line(tmp_path: Path, capsys) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_bytes(b'{"id": "s\xff", "inputs": {"post": "p"}}\n')
    assert main(["evaluate", "--samples", str(samples), "--model", "tiny:gpt2", "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err == f"ilf: error: {samples}:1: not valid UTF-8 (byte 0xff at column 10)\n"


# --- models that cannot be loaded -----------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_hub_id_offline_names_field_model_and_remedy(offline: None) -> None:
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelConfig(name_or_path="someone/not-a-model", device="cpu"), field="policy.name_or_path")
    message = str(err.value)
    assert isinstance(err.value, IlfError) and "\n" not in message
    assert message.startswith("policy.name_or_path: cannot load model 'someone/not-a-model': ")
    assert "offline (HF_HUB_OFFLINE=1)" in message and message.endswith("or tiny:gpt2 for a small random model")


def test_hub_id_that_fails_online_keeps_the_first_line_of_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    # The machine stays offline, so transformers still fails; only the wording of the reason changes.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelConfig(name_or_path="someone/not-a-model", device="cpu"))
    message = str(err.value)
    assert message.startswith("name_or_path: cannot load model 'someone/not-a-model': ") and "\n" not in message
    assert message.endswith("; give the path of a local model folder, or tiny:gpt2 for a small random model")


@pytest.mark.parametrize("relative", ["missing-model", "./missing-model"])
def test_missing_local_path_says_it_does_not_exist(tmp_path: Path, relative: str, offline: None) -> None:
    name = str(tmp_path / relative)
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelConfig(name_or_path=name, device="cpu"), field="refiner_model.name_or_path")
    assert str(err.value) == (
        f"refiner_model.name_or_path: cannot load model {name!r}: path does not exist; "
        "give the path of a local model folder, or tiny:gpt2 for a small random model"
    )


def test_missing_home_path_shows_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match=rf"'~/models/none': path does not exist \({tmp_path}/models/none\); "):
        load_model(ModelConfig(name_or_path="~/models/none", device="cpu"))


def test_models_that_exist_still_load_with_a_field_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = tiny_model("gpt2", seed=4)
    save_model(model, tokenizer, tmp_path / "models" / "m")
    assert load_model(ModelConfig(name_or_path="tiny:gpt2", device="cpu"), field="policy.name_or_path").name == "tiny:gpt2"
    loaded = load_model(ModelConfig(name_or_path=str(tmp_path / "models" / "m"), device="cpu"), field="policy.name_or_path")
    assert not loaded.is_seq2seq and loaded.model.config.n_embd == model.config.n_embd
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_model(ModelConfig(name_or_path="~/models/m", device="cpu")).name == "~/models/m"


def test_cli_reports_a_missing_model_in_one_line(tmp_path: Path, capsys) -> None:
    samples = tmp_path / "samples.jsonl"
    write_records(samples, [Sample(id="s", inputs={"title": "t", "post": "p"}, references=["r"])])
    missing = tmp_path / "no-model"
    assert main(["evaluate", "--samples", str(samples), "--model", str(missing), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ilf: error: --model: cannot load model '{missing}': path does not exist; ")
    assert err.count("\n") == 1


# --- what `ilf config` checks beyond the schema ---------------------------------------------------

MY_CONFIG = """\
name: my_data
task:
  name: template
  options:
    initial_template: "Question: {question}\\nAnswer:"
    refine_template: "Question: {question}\\nAnswer: {output}\\nFeedback: {feedback}\\nBetter:"
data:
  loader: jsonl
  path: ./my_data
  eval_split: test
  fields: {id: qid, inputs: [question], initial_output: draft, feedback: critique}
"""
ROWS = [{"qid": "q1", "question": "Legs of a spider?", "draft": "six", "critique": "Eight."}]


def _my_data(tmp_path: Path, config: str = MY_CONFIG, splits: tuple[str, ...] = ("train", "test")) -> Path:
    for split in splits:
        (tmp_path / "my_data").mkdir(exist_ok=True)
        (tmp_path / "my_data" / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    path = tmp_path / "my_data.yaml"
    path.write_text(config)
    return path


def _config_error(capsys, *argv: str) -> str:
    assert main(["config", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no config printed
    return captured.err


def test_ilf_config_passes_a_config_whose_files_fields_and_templates_fit(tmp_path: Path, capsys) -> None:
    assert main(["config", str(_my_data(tmp_path))]) == 0
    assert "initial_template: 'Question: {question}" in capsys.readouterr().out


def test_ilf_config_names_a_missing_split_file_with_the_config_line(tmp_path: Path, capsys) -> None:
    config = _my_data(tmp_path, splits=("train",))
    folder = tmp_path / "my_data"
    assert _config_error(capsys, str(config)) == (
        f"ilf: error: {config}:9: field 'data.path': {folder}: no test.jsonl or test.csv in this folder (the test split)\n"
    )
    assert _config_error(capsys, str(config), "--set", "data.path=./elsewhere") == (
        "ilf: error: --set: field 'data.path': ./elsewhere: no such file or folder, and not a hub dataset id (owner/name) "
        "(the train split)\n"
    )


def test_ilf_config_names_a_mapped_field_the_first_row_lacks(tmp_path: Path, capsys) -> None:
    config = _my_data(tmp_path, MY_CONFIG.replace("inputs: [question]", "inputs: [qestion]"))
    train = tmp_path / "my_data" / "train.jsonl"
    assert _config_error(capsys, str(config)) == f"ilf: error: {train}:1: field 'qestion': is missing (mapped as data.fields.inputs)\n"
    csv_file = tmp_path / "table.csv"
    csv_file.write_text("qid,question\nq1,Legs of a spider?\n")
    err = _config_error(capsys, str(config), "--set", f"data.path={csv_file}", "--set", "data.loader=csv")
    assert err == f"ilf: error: {csv_file}:2: field 'qestion': is missing (mapped as data.fields.inputs)\n"


def test_ilf_config_names_a_template_field_that_no_sample_has(tmp_path: Path, capsys) -> None:
    config = _my_data(tmp_path, MY_CONFIG.replace("Feedback: {feedback}", "Feedback: {critique}"))
    train = tmp_path / "my_data" / "train.jsonl"
    assert _config_error(capsys, str(config)) == (
        f"ilf: error: {config}:6: field 'task.options.refine_template': uses {{critique}}, which the samples of {train} do not "
        "have (they have: question; the task adds: feedback, input, output)\n"
    )
    # a task's default template: named where the config names the task
    config.write_text("name: my_data\ntask:\n  name: summarization\n" + MY_CONFIG[MY_CONFIG.index("data:") :])
    assert _config_error(capsys, str(config)) == (
        f"ilf: error: {config}:3: field 'task.options.initial_template': task summarization by default uses {{title}}, "
        f"which the samples of {train} do not have (they have: question; the task adds: input)\n"
    )


def test_ilf_config_finds_the_line_in_the_base_config_that_sets_the_key(tmp_path: Path, capsys) -> None:
    base = _my_data(tmp_path, MY_CONFIG.replace("{question}\\nAnswer:", "{questoin}\\nAnswer:"))
    child = tmp_path / "child.yaml"
    child.write_text("base: my_data.yaml\nname: child\n")
    err = _config_error(capsys, str(child))
    assert err.startswith(f"ilf: error: {base}:5: field 'task.options.initial_template': uses {{questoin}}")


def test_what_ilf_config_cannot_check_offline_it_says_and_passes(caplog, capsys) -> None:
    caplog.set_level(logging.INFO, logger="ilf")
    assert main(["config"]) == 0  # the defaults: SLF5K from the hub
    assert (
        "not checked yet: data.path: JeremyAlain/SLF5K is a hub dataset id, not a local file or folder: its train and test "
        "splits are read when the data stage downloads it"
    ) in caplog.messages


@pytest.mark.parametrize(
    "sets",
    [
        [],  # the bundled SLF5K-layout data, summarization prompts
        ["data.loader=humaneval", "data.path=humaneval", "task.name=code"],
        ["data.loader=facts_world", "task.name=facts", "feedback.source=simulated"],
        ["data.loader=program_world", "task.name=code", "feedback.source=execution"],
    ],
)
def test_the_built_in_loaders_and_tasks_pass_the_check(sets: list[str]) -> None:
    from ilf.cli import check_inputs

    offline = str(Path(__file__).resolve().parent.parent / "experiments" / "offline.yaml")
    assert check_inputs(load_config(offline, sets), offline, sets) == []


def test_ilf_run_checks_before_any_stage(tmp_path: Path, capsys) -> None:
    config = _my_data(tmp_path, MY_CONFIG.replace("{question}\\nAnswer:", "{questoin}\\nAnswer:"))
    assert main(["run", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "field 'task.options.initial_template': uses {questoin}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


def test_ilf_config_checks_every_cell_of_a_study_config(tmp_path: Path, capsys) -> None:
    """A study config is checked as ``ilf study`` builds its cells: each cell's config, and the data
    and templates of each, with the same errors as a run config's."""
    study = "study:\n  methods: [ilf, sft_initial]\n  seeds: [0, 1]\n"
    config = _my_data(tmp_path, MY_CONFIG + study)
    assert main(["config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("study:\n  methods:\n  - ilf\n  - sft_initial\n")
    assert "# 4 cells, each config checked (1 data and task settings read):" in out and "#   seed1-sft_initial" in out

    assert _config_error(capsys, str(config), "--set", "data.path=./elsewhere").startswith(
        "ilf: error: --set: field 'data.path': ./elsewhere"
    )
    # a variant's own setting reaches its cell, and is checked there
    variant = study + "  variants:\n    ilf_typo:\n      method: ilf\n      set: ['task.options.initial_template=\"Q: {qestion}\"']\n"
    typo = _my_data(tmp_path, MY_CONFIG + variant.replace("[ilf, sft_initial]", "[ilf, ilf_typo]"))
    assert _config_error(capsys, str(typo)).startswith(
        f"ilf: error: {typo}: field 'study.variants.ilf_typo.set': task.options.initial_template: uses {{qestion}}, which the samples of "
    )
    assert "unknown method 'nonesuch'" in _config_error(capsys, str(config), "--set", "study.methods=[ilf, nonesuch]")


def test_ilf_config_builds_a_prompt_of_ones_own_task_from_the_first_row(tmp_path: Path, capsys) -> None:
    """A task of one's own is checked through its own prompt code, on the data's first row."""
    (tmp_path / "my_task.py").write_text(
        "from ilf.tasks.base import Task\n\n\n"
        "class Asks(Task):\n"
        "    def initial_prompt(self, sample):\n"
        "        return 'Q: ' + sample.inputs['query']\n\n"
        "    def refine_prompt(self, sample, output, feedback):\n"
        "        return self.initial_prompt(sample) + output\n"
    )
    config = _my_data(tmp_path, "name: my_data\ntask:\n  name: my_task:Asks\n" + MY_CONFIG[MY_CONFIG.index("data:") :])
    train = tmp_path / "my_data" / "train.jsonl"
    sys.path.insert(0, str(tmp_path))
    try:
        assert _config_error(capsys, str(config)) == (
            f"ilf: error: {config}:3: field 'task.name': building a prompt for the first sample of {train} failed: KeyError: 'query'\n"
        )
    finally:
        sys.path.remove(str(tmp_path))
        TASKS.unregister("my_task:Asks")  # a class named by its path is listed once used: the docs' tables must not see it
