"""Generic JSONL or CSV loader: the config's ``data.fields`` says which column is what.

data:
  loader: jsonl
  path: my_task/            # or a file
  fields:
    id: uid                 # optional; default the row number
    inputs: [question, context]   # or {prompt_name: column}; default every unmapped column
    initial_output: answer
    references: [gold]
    feedback: critique
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ilf.data import SplitData, resolve_split_file
from ilf.records import Feedback, RecordError, Sample, count_jsonl_rows, iter_jsonl, iter_text_lines
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig

_ROLES = {"id", "inputs", "initial_output", "references", "feedback", "feedback_class"}


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    if fmt == "jsonl" and path.suffix != ".csv":
        yield from iter_jsonl(path)
        return
    # Lines come through iter_text_lines so that bad bytes are reported with their line number.
    reader = csv.DictReader(line for _, line in iter_text_lines(path))
    for row in reader:
        yield reader.line_num, row


def count_rows(path: Path, fmt: str) -> int:
    """The rows ``load`` would read from the file, counted without converting them (bad bytes are
    replaced, not raised: the rows a limit leaves out are not checked)."""
    if fmt == "jsonl" and path.suffix != ".csv":
        return count_jsonl_rows(path)
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        return max(0, sum(1 for row in csv.reader(handle) if row) - 1)  # less the header


def _as_list(value: Any, role: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"data.fields.{role}: expected a column name or a list of column names, got {value!r}")


def _column(row: dict[str, Any], column: str, path: Path, line: int, role: str) -> str | None:
    if column not in row:
        raise RecordError(path, line, column, f"is missing (mapped as data.fields.{role})")
    value = row[column]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(path, line, column, f"expected a string, got {type(value).__name__}")
    return value.strip()


def load(path: Path, fields: dict[str, Any], limit: int | None = None, fmt: str = "jsonl") -> SplitData:
    unknown = set(fields) - _ROLES
    if unknown:
        raise ValueError(f"data.fields: unknown role(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_ROLES))})")
    id_column = fields.get("id")
    output_column = fields.get("initial_output")
    feedback_column = fields.get("feedback")
    class_column = fields.get("feedback_class")
    reference_columns = _as_list(fields.get("references"), "references")
    inputs_spec = fields.get("inputs")
    mapped = {c for c in (id_column, output_column, feedback_column, class_column) if c} | set(reference_columns)

    data = SplitData(samples=[], origin=str(path))
    seen: set[str] = set()
    for line, row in _rows(path, fmt):
        if limit is not None and len(data.samples) >= limit:
            data.count_all = lambda: count_rows(path, fmt)
            break
        if not isinstance(row, dict):
            raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
        if isinstance(inputs_spec, dict):
            input_columns = dict(inputs_spec)
        elif inputs_spec is not None:
            input_columns = {c: c for c in _as_list(inputs_spec, "inputs")}
        else:
            input_columns = {c: c for c in row if c not in mapped}
        inputs = {}
        for name, column in input_columns.items():
            value = _column(row, column, path, line, "inputs")
            if value is None:
                raise RecordError(path, line, column, "is empty (mapped as an input)")
            inputs[name] = value
        sample_id = _column(row, id_column, path, line, "id") if id_column else f"{path.stem}-{line}"
        if not sample_id:
            raise RecordError(path, line, id_column, "is empty")
        if sample_id in seen:
            raise RecordError(path, line, id_column or "id", f"duplicate id {sample_id!r}")
        seen.add(sample_id)
        initial = _column(row, output_column, path, line, "initial_output") if output_column else None
        references = [r for r in (_column(row, c, path, line, "references") for c in reference_columns) if r]
        used = mapped | set(input_columns.values())
        extra = {k: v for k, v in row.items() if k not in used}
        data.samples.append(Sample(id=sample_id, inputs=inputs, initial_output=initial, references=references, extra=extra))
        text = _column(row, feedback_column, path, line, "feedback") if feedback_column else None
        if text:
            data.feedback.append(
                Feedback(
                    sample_id=sample_id,
                    text=text,
                    output=initial,
                    source=f"dataset:{path.name}",
                    feedback_class=_column(row, class_column, path, line, "feedback_class") if class_column else None,
                )
            )
    return data


@LOADERS.register("jsonl", help="Any JSONL file or <split>.jsonl folder, mapped to samples by data.fields.")
def load_jsonl(config: RunConfig, split: str, path: str, limit: int | None) -> SplitData:
    return load(resolve_split_file(path, split), config.data.fields, limit, fmt="jsonl")


@LOADERS.register("csv", help="Any CSV file or <split>.csv folder, mapped to samples by data.fields.")
def load_csv(config: RunConfig, split: str, path: str, limit: int | None) -> SplitData:
    return load(resolve_split_file(path, split), config.data.fields, limit, fmt="csv")
