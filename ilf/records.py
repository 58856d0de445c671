"""The records that flow through an ILF round, and their JSONL form.

This module is the only place that knows the on-disk shape of a record. Reading validates every
line and names the file, line and field of the first problem; fields a record does not know are
kept in ``extra`` and written back unchanged, so user data survives a round trip.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from ilf import reads
from ilf.files import atomic_write_text
from ilf.schema import SchemaError, build


class RecordError(SchemaError):
    """A record that does not have the expected shape; the message names file, line and field."""


@dataclass
class Sample:
    """One input of the task, with the model output people critique and optional references."""

    id: str
    inputs: dict[str, str]
    initial_output: str | None = None
    references: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Feedback:
    """A free-text critique of ``output`` for one sample."""

    sample_id: str
    text: str
    output: str | None = None
    annotator: str = "unknown"
    source: str = "unknown"
    rating: float | None = None
    feedback_class: str | None = None
    lead_time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidate:
    """One refinement; ``scores`` holds every selector's score for it, keyed by selector name."""

    text: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Refinements:
    """The N candidate refinements generated for one sample and its feedback."""

    sample_id: str
    candidates: list[Candidate]
    output: str | None = None
    feedback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Selection:
    """The candidate a selector chose for one sample, with all candidates and their scores."""

    sample_id: str
    selector: str
    index: int
    text: str
    candidates: list[Candidate] = field(default_factory=list)
    feedback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comparison:
    """A judgement of which of two outputs for one sample is better."""

    sample_id: str
    a: str
    b: str
    preferred: str  # "a", "b" or "tie"
    annotator: str = "unknown"
    source: str = "unknown"
    a_system: str | None = None
    b_system: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preferred not in ("a", "b", "tie"):
            raise RecordError(None, None, "preferred", f"must be 'a', 'b' or 'tie', got {self.preferred!r}")

    @property
    def chosen(self) -> str:
        return self.b if self.preferred == "b" else self.a

    @property
    def rejected(self) -> str:
        return self.a if self.preferred == "b" else self.b


@dataclass
class Output:
    """A text a system produced for a sample (evaluation outputs, initial outputs)."""

    sample_id: str
    text: str
    system: str = "policy"
    extra: dict[str, Any] = field(default_factory=dict)


R = TypeVar("R")


def format_inputs(inputs: dict[str, str]) -> str:
    """A sample's input fields as readable text ("Title: ...", blank line, "Post: ...")."""
    return "\n\n".join(f"{key.capitalize()}: {value}" for key, value in inputs.items())


def from_dict(cls: type[R], obj: Any, path: str | Path | None = None, line: int | None = None) -> R:
    """Validate a JSON object as a record of type ``cls``; unknown fields go to ``extra``."""
    return build(cls, obj, RecordError, path, line, unknown="keep")


def to_dict(record: Any) -> dict[str, Any]:
    """The JSON form of a record: its fields, then the unknown fields it was read with."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name == "extra":
            continue
        if isinstance(value, list):
            value = [to_dict(v) if dataclasses.is_dataclass(v) else v for v in value]
        elif dataclasses.is_dataclass(value):
            value = to_dict(value)
        out[f.name] = value
    for key, value in getattr(record, "extra", {}).items():
        out.setdefault(key, value)
    return out


def iter_text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 file, each line with its own ending; name the line of bad bytes.

    Lines end at LF, CRLF or CR, as in a text file opened with ``newline=""``, so they suit
    ``csv.reader`` and their numbers match the ones an editor shows. A ``.gz`` file is read
    through gzip (HumanEval ships as ``HumanEval.jsonl.gz``). A stage that reads a file depends on
    its content (``ilf.reads``).
    """
    reads.note_file(path)
    import gzip

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    number = 0
    # Decoding line by line, not through a text-mode file, is what lets a decode error carry the
    # line it happened on: a text-mode file decodes in chunks and reports only a chunk offset.
    # Newline bytes never occur inside a multi-byte UTF-8 sequence, so splitting first is safe.
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for chunk in handle:
            for raw in chunk.splitlines(keepends=True):
                number += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    column = len(raw[: err.start].decode("utf-8")) + 1
                    problem = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {column})"
                    raise RecordError(path, number, None, problem) from None
                yield number, line


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line, naming the line on bad JSON or UTF-8."""
    path = Path(path)
    for number, raw in iter_text_lines(path):
        if not raw.strip():
            continue
        # Without its line ending: parsed with it, a line cut short is reported at column 1 of a
        # "line 2" that the file does not have there.
        text = raw.rstrip("\r\n")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            # a record cut short (or spread over lines, as pretty-printed JSON is) fails at its end
            end = ", the end of the line: a record must fit on one line" if err.pos >= len(text.rstrip()) else ""
            raise RecordError(path, number, None, f"not valid JSON ({err.msg} at column {err.colno}{end})") from None
        yield number, record


def count_jsonl_rows(path: str | Path) -> int:
    """The records of a JSONL file (its non-blank lines, as ``iter_jsonl`` reads them), counted
    without decoding or parsing them, so a bad line further on does not stop the count."""
    import gzip

    path = Path(path)
    count = 0
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
        for chunk in handle:
            count += sum(1 for raw in chunk.splitlines() if raw.decode("utf-8", "replace").strip())
    return count


def read_records(path: str | Path, cls: type[R]) -> list[R]:
    """Read and validate every line of a JSONL file as a record of type ``cls``."""
    return [from_dict(cls, obj, path, number) for number, obj in iter_jsonl(path)]


def write_records(path: str | Path, records: Iterable[Any]) -> int:
    """Write records as JSONL atomically; return how many were written."""
    lines = [json.dumps(to_dict(r), ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def check_unique_ids(records: list[Any], path: str | Path, key: str = "id") -> None:
    seen: dict[str, int] = {}
    for index, record in enumerate(records, start=1):
        value = getattr(record, key)
        if value in seen:
            raise RecordError(path, index, key, f"duplicate id {value!r} (first seen on record {seen[value]})")
        seen[value] = index
