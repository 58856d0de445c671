import json
import logging
from pathlib import Path

import pytest
from conftest import slf5k_row, write_jsonl

from ilf.config import DataConfig, RunConfig
from ilf.data import load_eval, load_train
from ilf.records import RecordError


def test_slf5k_fields_map_to_records(slf5k_dir: Path) -> None:
    data = load_train(RunConfig(data=DataConfig(loader="slf5k", path=str(slf5k_dir), limit=None)))
    row = slf5k_row(3)
    sample = data.samples[3]
    assert sample.id == row["id"]
    assert sample.inputs == {"title": row["title"], "post": row["post"], "subreddit": "relationships"}
    assert sample.initial_output == row["generated_summary_for_feedback"]
    assert sample.references == [row["ideal_human_summary"], row["tldr_human_reference_summary"]]
    assert sample.extra["summary_prompt"] == row["summary_prompt"]  # unmapped fields are kept
    feedback = data.feedback[3]
    assert (feedback.sample_id, feedback.text, feedback.output) == (row["id"], row["feedback"], row["generated_summary_for_feedback"])
    assert feedback.feedback_class == "coverage" and feedback.lead_time == 103.0
    comparison = data.comparisons[3]
    assert comparison.preferred == "b" and comparison.chosen == row["generated_summary_for_comparison_B"]
    assert data.comparisons[2].preferred == "a"


def test_slf5k_rows_whose_critique_or_comparison_cannot_be_used_are_counted(tmp_path: Path, caplog) -> None:
    from ilf.config import load_config
    from ilf.pipeline import Pipeline

    rows = [slf5k_row(i) for i in range(4)]
    rows[1]["generated_summary_for_feedback"] = ""  # a critique of no summary
    rows[2]["comparison_preference"] = None  # two summaries, nobody's preference
    rows[3]["generated_summary_for_comparison_B"] = None
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    data = load_train(RunConfig(data=DataConfig(path=str(path))))
    assert len(data.samples) == 4 and len(data.feedback) == 3 and len(data.comparisons) == 2
    assert data.dropped == {
        "feedback without generated_summary_for_feedback": 1,
        "comparison without both summaries and a comparison_preference": 2,
    }
    # the data stage reports the counts (and says so in the log), with the held-out split's own
    run = Pipeline(load_config(None, [f"data.path={path}", f"data.eval_path={path}"]), tmp_path / "run")
    run.run(until="data")
    summary = json.loads(run.paths.marker("data").read_text())["summary"]
    assert summary["dropped"] == data.dropped and summary["eval_dropped"] == data.dropped
    assert "data: 2 rows of the train split had comparison without both summaries" in caplog.text


def test_subsets_are_nested_prefixes(slf5k_dir: Path) -> None:
    small = load_train(RunConfig(data=DataConfig(path=str(slf5k_dir), limit=5))).samples
    large = load_train(RunConfig(data=DataConfig(path=str(slf5k_dir), limit=20))).samples
    assert [s.id for s in small] == [s.id for s in large[:5]]
    assert len(large) == 20


def test_eval_split_without_feedback(slf5k_dir: Path) -> None:
    held_out = load_eval(RunConfig(data=DataConfig(path=str(slf5k_dir), eval_split="test")))
    assert len(held_out.samples) == 10 and held_out.feedback == []
    assert all(len(s.references) == 2 for s in held_out.samples)


def test_single_file_path(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mine.jsonl", [slf5k_row(i) for i in range(3)])
    assert len(load_train(RunConfig(data=DataConfig(path=str(path)))).samples) == 3


def test_missing_field_names_file_line_field(tmp_path: Path) -> None:
    rows = [slf5k_row(0), slf5k_row(1), slf5k_row(2)]
    del rows[2]["post"]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(RecordError) as err:
        load_train(RunConfig(data=DataConfig(path=str(tmp_path))))
    assert str(err.value) == f"{path}:3: field 'post': is missing"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(slf5k_row(0)) + "\n" + '{"id": "x", "title": \n')
    with pytest.raises(RecordError, match=rf"^{path}:2: not valid JSON"):
        load_train(RunConfig(data=DataConfig(path=str(path))))


def test_bad_preference_and_duplicate_id(tmp_path: Path) -> None:
    row = slf5k_row(0)
    row["comparison_preference"] = "Summary C"
    path = write_jsonl(tmp_path / "a.jsonl", [row])
    with pytest.raises(RecordError, match=r":1: field 'comparison_preference': expected 'Summary A' or 'Summary B'"):
        load_train(RunConfig(data=DataConfig(path=str(path))))
    path = write_jsonl(tmp_path / "b.jsonl", [slf5k_row(0), slf5k_row(0)])
    with pytest.raises(RecordError, match=r"b.jsonl:2: field 'id': duplicate id"):
        load_train(RunConfig(data=DataConfig(path=str(path))))


def test_generic_jsonl_mapping(tmp_path: Path) -> None:
    rows = [
        {"uid": "q1", "question": "2+2?", "answer": "5", "gold": "4", "critique": "Wrong sum.", "source_url": "x"},
        {"uid": "q2", "question": "3+3?", "answer": "6", "gold": "6", "critique": ""},
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = DataConfig(
        loader="jsonl",
        path=str(tmp_path),
        fields={"id": "uid", "inputs": ["question"], "initial_output": "answer", "references": ["gold"], "feedback": "critique"},
    )
    data = load_train(RunConfig(data=config))
    assert [s.id for s in data.samples] == ["q1", "q2"]
    assert data.samples[0].inputs == {"question": "2+2?"}
    assert data.samples[0].references == ["4"] and data.samples[0].extra == {"source_url": "x"}
    assert [(f.sample_id, f.text) for f in data.feedback] == [("q1", "Wrong sum.")]
    del rows[1]["question"]
    write_jsonl(path, rows)
    with pytest.raises(RecordError, match=r"train.jsonl:2: field 'question': is missing \(mapped as data.fields.inputs\)"):
        load_train(RunConfig(data=config))


def test_generic_csv(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("id,prompt,draft\nr1,Say hi,hello\nr2,Say bye,\n")
    data = load_train(RunConfig(data=DataConfig(loader="csv", path=str(path), fields={"id": "id", "initial_output": "draft"})))
    assert [s.inputs for s in data.samples] == [{"prompt": "Say hi"}, {"prompt": "Say bye"}]
    assert [s.initial_output for s in data.samples] == ["hello", None]


# --- a row limit that cuts a file says so ---------------------------------------------------------


def _cut_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ilf.data" and r.levelno >= logging.INFO and " rows; " in r.getMessage()]


def test_a_limit_that_cuts_a_file_logs_the_file_its_rows_what_is_kept_and_the_key(slf5k_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ilf")
    path = slf5k_dir / "train.jsonl"
    (slf5k_dir / "train.jsonl").write_text(path.read_text() + "\n{not json, and never read}\n")  # a count reads no row
    load_train(RunConfig(data=DataConfig(path=str(slf5k_dir), limit=5)))
    assert _cut_lines(caplog) == [
        f"data: {path} (split train) has 25 rows; data.limit: 5 keeps the first 5 (set data.limit: null to read them all)"
    ]
    caplog.clear()
    load_train(RunConfig(data=DataConfig(path=str(slf5k_dir), limit=5, offset=10)))
    assert _cut_lines(caplog) == [
        f"data: {path} (split train) has 25 rows; data.offset: 10 and data.limit: 5 keep rows 11 to 15 "
        "(set data.limit: null to read every row from row 11 on)"
    ]
    caplog.clear()
    load_eval(RunConfig(data=DataConfig(path=str(slf5k_dir), eval_split="test", eval_limit=4)))
    assert _cut_lines(caplog) == [
        f"data: {slf5k_dir / 'test.jsonl'} (split test) has 10 rows; data.eval_limit: 4 keeps the first 4 "
        "(set data.eval_limit: null to read them all)"
    ]


def test_a_limit_that_keeps_every_row_says_nothing(slf5k_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ilf")
    assert len(load_eval(RunConfig(data=DataConfig(path=str(slf5k_dir), eval_split="test", eval_limit=10))).samples) == 10
    assert len(load_train(RunConfig(data=DataConfig(path=str(slf5k_dir), limit=100))).samples) == 24  # the default limit
    assert _cut_lines(caplog) == []


def test_the_jsonl_and_csv_loaders_count_the_rows_they_leave_out(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ilf")
    jsonl = write_jsonl(tmp_path / "q.jsonl", [{"question": f"q{i}"} for i in range(7)])
    load_train(RunConfig(data=DataConfig(loader="jsonl", path=str(jsonl), limit=3)))
    csv_path = tmp_path / "q.csv"
    csv_path.write_text('question\n"one\nline two"\n\ntwo\nthree\n')  # a field over two lines, a blank line: three rows
    load_train(RunConfig(data=DataConfig(loader="csv", path=str(csv_path), limit=1)))
    assert [line.split("; ")[0] for line in _cut_lines(caplog)] == [
        f"data: {jsonl} (split train) has 7 rows",
        f"data: {csv_path} (split train) has 3 rows",
    ]


def test_a_run_shows_the_cut_in_its_log(tmp_path: Path, caplog) -> None:
    from ilf.cli import main

    offline = Path(__file__).resolve().parent.parent / "experiments" / "offline.yaml"
    assert main(["run", str(offline), "--run-dir", str(tmp_path / "run"), "--until", "data", "--set", "data.eval_limit=null"]) == 0
    train = offline.parent.parent / "data" / "offline" / "train.jsonl"
    # INFO is what `ilf` shows on a normal run (no -v)
    assert logging.getLogger("ilf.data").getEffectiveLevel() == logging.INFO
    assert _cut_lines(caplog) == [
        f"data: {train} (split train) has 200 rows; data.limit: 100 keeps the first 100 (set data.limit: null to read them all)"
    ]
