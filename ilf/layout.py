"""How a run directory is laid out: the files its stages write (``RunPaths``), its bookkeeping
under ``.ilf/``, and where a run with several feedback rounds keeps each round (``RUN_DIR/round-K``,
K from 1, each an ordinary run directory). The one place that names them; everything else asks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ilf.files import Journal

ROUND_PREFIX = "round-"


def round_dir(run_dir: str | Path, k: int) -> Path:
    """Round ``k``'s directory (k counts from 1)."""
    return Path(run_dir) / f"{ROUND_PREFIX}{k}"


def is_round_dir(path: str | Path) -> bool:
    """Whether ``path`` is one round's directory of a run with rounds."""
    suffix = Path(path).name.removeprefix(ROUND_PREFIX)
    return Path(path).name.startswith(ROUND_PREFIX) and suffix.isdigit()


@dataclass(frozen=True)
class RunPaths:
    root: Path

    def __getattr__(self, name: str) -> Path:
        if name in FILES:
            return self.root / FILES[name]
        raise AttributeError(name)

    @property
    def state(self) -> Path:
        return self.root / ".ilf"

    def marker(self, stage: str) -> Path:
        return self.state / "stages" / f"{stage}.json"

    def journal(self, stage: str, key: str, part: str = "") -> Journal:
        return Journal(self.state / "partial" / f"{stage}{part}-{key}.jsonl")


# What a run directory holds; RunPaths(root).<key> is the path.
FILES = {
    "config": "config.yaml",
    "samples": "samples.jsonl",
    "eval_samples": "eval_samples.jsonl",
    "dataset_feedback": "dataset_feedback.jsonl",
    "dataset_comparisons": "dataset_comparisons.jsonl",
    "outputs": "outputs.jsonl",
    "feedback": "feedback.jsonl",
    "refinements": "refinements.jsonl",
    "selected": "selected.jsonl",
    "comparisons": "comparisons.jsonl",
    "reward_model": "reward_model",
    "model": "model",
    "eval_outputs": "eval_outputs.jsonl",
    "metrics": "metrics.json",
}
