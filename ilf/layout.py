"""Where a run with several feedback rounds keeps each round: ``RUN_DIR/round-K`` (K from 1), each
an ordinary run directory. The one place that names them; everything else asks here."""

from __future__ import annotations

from pathlib import Path

ROUND_PREFIX = "round-"


def round_dir(run_dir: str | Path, k: int) -> Path:
    """Round ``k``'s directory (k counts from 1)."""
    return Path(run_dir) / f"{ROUND_PREFIX}{k}"


def is_round_dir(path: str | Path) -> bool:
    """Whether ``path`` is one round's directory of a run with rounds."""
    suffix = Path(path).name.removeprefix(ROUND_PREFIX)
    return Path(path).name.startswith(ROUND_PREFIX) and suffix.isdigit()
