"""Loaders that turn a dataset on disk or on the hub into records.

Each loader returns the samples of one split plus whatever feedback and comparisons the split
carries. ``load_split`` dispatches on ``data.loader``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ilf.config import DataConfig
from ilf.records import Comparison, Feedback, Sample


@dataclass
class SplitData:
    samples: list[Sample]
    feedback: list[Feedback] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


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
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=path, filename=hub_filename or f"{split}.jsonl", repo_type="dataset"))
    raise FileNotFoundError(f"{path}: no such file or folder, and not a hub dataset id (owner/name)")


def load_split(config: DataConfig, split: str, path: str | None = None, limit: int | None = None) -> SplitData:
    from ilf.data import slf5k, tabular

    path = path or config.path
    if config.loader == "slf5k":
        data = slf5k.load(resolve_split_file(path, split), limit)
    elif config.loader in ("jsonl", "csv"):
        data = tabular.load(resolve_split_file(path, split), config.fields, limit, fmt=config.loader)
    else:
        raise ValueError(f"data.loader: unknown loader {config.loader!r} (slf5k, jsonl or csv)")
    return data


def load_train(config: DataConfig) -> SplitData:
    return load_split(config, config.split, limit=config.limit)


def load_eval(config: DataConfig) -> SplitData:
    return load_split(config, config.eval_split, path=config.eval_path, limit=config.eval_limit)
