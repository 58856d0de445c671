"""Loaders that turn a dataset on disk or on the hub into records.

Each loader returns the samples of one split plus whatever feedback and comparisons the split
carries. Loaders are plug-ins: one module each in this package, registered in ``LOADERS`` by
name; ``load_split`` dispatches on ``data.loader``.
"""

from __future__ import annotations

import dataclasses
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

from ilf.records import Comparison, Feedback, RecordError, Sample, count_jsonl_rows
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import ModelConfig, RunConfig

log = logging.getLogger(__name__)


class NeedsDownload(Exception):
    """Met where a split can be read only by downloading it (a hub dataset id) while nothing may be
    downloaded: ``first_sample`` checks a config so."""


_NO_DOWNLOAD: ContextVar[bool] = ContextVar("ilf_data_no_download", default=False)


def before_download(what: str) -> None:
    """A loader calls this before it downloads anything; while ``first_sample`` checks a config it
    raises NeedsDownload saying ``what`` would be downloaded."""
    if _NO_DOWNLOAD.get():
        raise NeedsDownload(what)


@dataclass
class SplitData:
    samples: list[Sample]
    feedback: list[Feedback] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    # what rows carried but the loader could not use, by reason: the data stage reports every count
    dropped: dict[str, int] = field(default_factory=dict)
    origin: str = ""  # where the rows came from: a file, or a hub dataset and split
    # set when the row limit kept fewer rows than the source holds: counts them all, when load_train
    # or load_eval says so (a check that reads one row counts nothing)
    count_all: Callable[[], int] | None = None

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


@dataclass(frozen=True)
class Dropped:
    """Part of a row a loader cannot use (a critique with no output it critiques, say): a converter
    returns it beside the sample so that it is counted by ``reason``, never lost in silence."""

    reason: str


def text_field(row: dict[str, Any], key: str, path: Path | str, line: int | None, required: bool = False, strip: bool = True) -> str | None:
    """A row's string field: None when missing or blank (an error naming file, line and field when
    ``required``), stripped, or with only its line endings normalised (``strip=False``: code keeps
    its indentation)."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError(path, line, key, "is missing" if key not in row else "is empty")
        return None
    if not isinstance(value, str):
        raise RecordError(path, line, key, f"expected a string, got {type(value).__name__}")
    return value.strip() if strip else value.replace("\r\n", "\n")


Row = Sample | tuple[Sample, Feedback | Dropped | None] | tuple[Sample, Feedback | Dropped | None, Comparison | Dropped | None]


def samples_from_rows(
    rows: Iterable[tuple[int, Any]],
    convert: Callable[[Any, int], Row],
    origin: Path | str,
    limit: int | None,
    id_field: str,
    count: Callable[[], int] | None = None,
) -> SplitData:
    """Samples converted from ``(line, row)`` pairs, up to ``limit``, with the feedback and the
    comparison a row may also carry; a repeated id is an error naming both lines. ``count`` gives
    the number of rows the source holds, said when the limit cuts it (default: the rows of the
    JSONL file ``origin``)."""
    data = SplitData(samples=[], origin=str(origin))
    seen: dict[str, int] = {}
    for line, row in rows:
        if limit is not None and len(data.samples) >= limit:
            data.count_all = count or (lambda: count_jsonl_rows(origin))
            break
        converted = convert(row, line)
        sample, *extras = converted if isinstance(converted, tuple) else (converted,)
        if sample.id in seen:
            raise RecordError(origin, line, id_field, f"duplicate id {sample.id!r} (first on line {seen[sample.id]})")
        seen[sample.id] = line
        data.samples.append(sample)
        for extra in extras:
            if isinstance(extra, Feedback):
                data.feedback.append(extra)
            elif isinstance(extra, Comparison):
                data.comparisons.append(extra)
            elif isinstance(extra, Dropped):
                data.drop(extra.reason)
    return data


def resolve_split_file(path: str, split: str, hub_filename: str | None = None) -> Path:
    """A local file, ``<folder>/<split>.jsonl``, or a file downloaded from a hub dataset repo."""
    local = Path(path).expanduser()
    if local.is_file():
        return local
    if local.is_dir():
        candidates = [local / f"{split}.jsonl", local / f"{split}.csv"]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{local}: no {split}.jsonl or {split}.csv in this folder")
    if path.count("/") == 1 and not path.startswith((".", "/", "~")):
        before_download(f"{path} is a hub dataset id, not a local file or folder")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=path, filename=hub_filename or f"{split}.jsonl", repo_type="dataset"))
    raise FileNotFoundError(f"{path}: no such file or folder, and not a hub dataset id (owner/name)")


def load_split(config: RunConfig, split: str, path: str | None = None, limit: int | None = None) -> SplitData:
    """One split through the loader ``data.loader`` names (registered, or ``module.path:function``).

    A loader is a function ``(config, split, path, limit) -> SplitData``; ``path`` is ``data.path``
    or ``data.eval_path``, ``limit`` the number of rows to keep."""
    loader = LOADERS.get(config.data.loader)
    return loader(config, split, path or config.data.path, limit)


def first_sample(config: RunConfig, split: str, path: str | None = None) -> tuple[Sample | None, str]:
    """The first sample of a split as the data stage reads it, and where it came from, with
    nothing downloaded: the file found and its first row converted, so a mapped field that row
    lacks is an error naming the file, line and field. None for an empty split; NeedsDownload
    where only a download would tell."""
    token = _NO_DOWNLOAD.set(True)
    try:
        data = load_split(config, split, path, limit=1)
    finally:
        _NO_DOWNLOAD.reset(token)
    return (data.samples[0] if data.samples else None), data.origin


def pretrained_world_model(config: RunConfig) -> Callable[[Any], Any]:
    """What trains (or finds cached) the model a config names ``pretrained``: the data loader's
    world model (its ``pretrained_model``: the facts world's, the program world's)."""
    loader = LOADERS.get(config.data.loader)
    if not isinstance(loader, WorldLoader):
        raise ValueError(
            f"name_or_path 'pretrained' names the world model of the data loader, and data.loader {config.data.loader!r} "
            "has none (the facts_world and program_world loaders do)"
        )
    return loader.pretrained_model


@runtime_checkable
class WorldLoader(Protocol):
    """A data loader whose world has a model of its own to pretrain (``pretrained_model(settings)``
    gives its folder): what a config's ``pretrained`` names."""

    pretrained_model: Callable[[Any], Any]

    def __call__(self, config: RunConfig, split: str, path: str, limit: int | None) -> SplitData: ...


def resolve_model(config: RunConfig, model: ModelConfig) -> ModelConfig:
    """``pretrained`` is the pretraining section's model (the data loader's world's: the facts
    world's, or the program world's), trained on first use and cached; ``pretrained@STEPS`` the
    same trained for STEPS steps only (a weaker refiner, say). Other names are returned as given."""
    name, _, steps = model.name_or_path.partition("@")
    if name != "pretrained":
        return model
    if config.pretraining is None:
        raise ValueError(f"name_or_path: {model.name_or_path!r} names the model of the pretraining section, which is not set")
    settings = config.pretraining
    if steps:
        if not steps.isdigit() or int(steps) < 1:
            raise ValueError(f"name_or_path: {model.name_or_path!r}: expected pretrained@STEPS with STEPS a positive integer")
        settings = dataclasses.replace(settings, steps=int(steps))
    return dataclasses.replace(model, name_or_path=str(pretrained_world_model(config)(settings)))


def load_train(config: RunConfig) -> SplitData:
    offset, limit = config.data.offset, config.data.limit
    if not offset:
        loaded = load_split(config, config.data.split, limit=limit)
        say_cut(loaded, config.data.split, "data.limit", limit)
        return loaded
    loaded = load_split(config, config.data.split, limit=None if limit is None else offset + limit)
    samples = loaded.samples[offset:]
    if not samples:
        raise ValueError(f"data.offset: {offset} skips all {len(loaded.samples)} rows of split {config.data.split!r}")
    say_cut(loaded, config.data.split, "data.limit", limit, offset)
    keep = {s.id for s in samples}
    return SplitData(
        samples=samples,
        feedback=[f for f in loaded.feedback if f.sample_id in keep],
        comparisons=[c for c in loaded.comparisons if c.sample_id in keep],
        dropped=loaded.dropped,
    )


def load_eval(config: RunConfig) -> SplitData:
    loaded = load_split(config, config.data.eval_split, path=config.data.eval_path, limit=config.data.eval_limit)
    say_cut(loaded, config.data.eval_split, "data.eval_limit", config.data.eval_limit)
    return loaded


def say_cut(data: SplitData, split: str, key: str, limit: int | None, offset: int = 0) -> None:
    """One log line when a row limit kept only part of a file: which file, how many rows it holds,
    how many are kept, and the key that says so (a default of 100 rows cuts larger files)."""
    if data.count_all is None or limit is None:
        return
    total = data.count_all()
    if offset:
        kept = f"data.offset: {offset} and {key}: {limit} keep rows {offset + 1} to {offset + limit}"
        rest = f"set {key}: null to read every row from row {offset + 1} on"
    else:
        kept, rest = f"{key}: {limit} keeps the first {limit}", f"set {key}: null to read them all"
    log.info("data: %s (split %s) has %d rows; %s (%s)", data.origin, split, total, kept, rest)
