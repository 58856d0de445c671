import json
from pathlib import Path

import pytest

from ilf.files import Journal, atomic_write_text
from ilf.records import Candidate, Comparison, Feedback, RecordError, Refinements, Sample, read_records, write_records


def test_round_trip_keeps_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"id": "s1", "inputs": {"post": "p"}, "references": ["r"], "annotator_note": {"x": 1}}) + "\n")
    (sample,) = read_records(path, Sample)
    assert sample.extra == {"annotator_note": {"x": 1}}
    out = tmp_path / "copy.jsonl"
    write_records(out, [sample])
    assert json.loads(out.read_text())["annotator_note"] == {"x": 1}
    assert read_records(out, Sample) == [sample]


def test_nested_candidates_validated_and_typed(tmp_path: Path) -> None:
    path = tmp_path / "ref.jsonl"
    record = Refinements(sample_id="s", candidates=[Candidate("a", {"embedding": 0.5}), Candidate("b")], feedback="f")
    write_records(path, [record])
    assert read_records(path, Refinements) == [record]
    bad = json.loads(path.read_text())
    bad["candidates"][1]["scores"] = {"embedding": "high"}
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(RecordError) as err:
        read_records(path, Refinements)
    assert str(err.value) == f"{path}:1: field 'candidates[1].scores.embedding': expected a number, got \"high\""


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_text('{"sample_id": "a", "text": "fine"}\n\n{"sample_id": "b", "text": \n')
    with pytest.raises(RecordError) as err:
        read_records(path, Feedback)
    assert err.value.path == path and err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: not valid JSON")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_line_broken_mid_way_is_named_by_its_own_line_and_column(tmp_path: Path, newline: str) -> None:
    # a record spread over two lines: the first half fails where its line ends, not at column 1 of the next
    path = tmp_path / "feedback.jsonl"
    path.write_text(newline.join(['{"sample_id": "a", "text": "fine"}', '{"sample_id": "b",', '"text": "rest"}', ""]), newline="")
    with pytest.raises(RecordError) as err:
        read_records(path, Feedback)
    assert (err.value.line, err.value.field) == (2, None)
    assert str(err.value) == (
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes at column 19, "
        "the end of the line: a record must fit on one line)"
    )
    # a fault inside a line keeps its own column
    path.write_text('{"sample_id": "a", "text" "x"}\n')
    with pytest.raises(RecordError, match=r":1: not valid JSON \(Expecting ':' delimiter at column 27\)$"):
        read_records(path, Feedback)


@pytest.mark.parametrize(
    "row, field, problem",
    [
        ({"sample_id": "a"}, "text", "is missing"),
        ({"sample_id": "a", "text": 5}, "text", "expected a string, got 5"),
        ({"sample_id": "a", "text": "t", "rating": "good"}, "rating", 'expected a number, got "good"'),
    ],
)
def test_bad_field_names_file_line_field(tmp_path: Path, row: dict, field: str, problem: str) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps({"sample_id": "ok", "text": "fine"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(RecordError) as err:
        read_records(path, Feedback)
    assert str(err.value) == f"{path}:2: field '{field}': {problem}"


def test_comparison_preference_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"sample_id": "s", "a": "x", "b": "y", "preferred": "left"}) + "\n")
    with pytest.raises(RecordError, match=r":1: field 'preferred': must be 'a', 'b' or 'tie'"):
        read_records(path, Comparison)
    chosen = Comparison(sample_id="s", a="x", b="y", preferred="b")
    assert (chosen.chosen, chosen.rejected) == ("y", "x")


def test_failed_write_leaves_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_records(path, [Sample(id="a", inputs={"post": "p"})])
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_records(path, [Sample(id="b", inputs={"post": "p"}, extra={"bad": object()})])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]  # no temporary left behind


def test_atomic_write_uses_ordinary_permissions(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    atomic_write_text(path, "hi")
    assert path.stat().st_mode & 0o644 == 0o644


def test_journal_drops_torn_tail_and_keeps_complete_lines(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append([{"i": 0, "texts": ["a"]}, {"i": 1, "texts": ["b"]}])
    with open(journal.path, "a") as handle:
        handle.write('{"i": 2, "texts": ["c')  # a kill in the middle of a write
    assert journal.recover() == [{"i": 0, "texts": ["a"]}, {"i": 1, "texts": ["b"]}]
    journal.append([{"i": 2, "texts": ["c"]}])
    assert [row["i"] for row in journal.recover()] == [0, 1, 2]
