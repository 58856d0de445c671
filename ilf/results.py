"""What a run's ``metrics.json`` holds, as one type that writes it and every reader reads it through.

A run evaluates one or more systems (``base``, ``finetuned``, ``best_of_n``, ...) on the held-out
split; ``primary`` names the one a study reports. ``systems`` maps each to its metrics (flat keys,
``<key>_sem`` for standard errors, ``generation`` for how its outputs were sampled); ``round``
holds what the round itself measured (selection hit rates, target quality, ``cost.<kind>``). A run
of several rounds also lists each round's systems and round measures under ``rounds``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Scores:
    """The systems one evaluation scored, which of them is primary, and the round's own measures."""

    primary: str
    systems: dict[str, dict[str, Any]]
    round: dict[str, Any] = field(default_factory=dict)

    def primary_row(self) -> dict[str, Any]:
        """Every metric of the primary system."""
        return self.systems.get(self.primary, {})

    def primary_numbers(self, sem: bool = False) -> dict[str, float]:
        """The primary system's numeric metrics (standard errors only with ``sem``)."""
        return {k: v for k, v in self.primary_row().items() if _is_number(v) and (sem or not k.endswith("_sem"))}

    def numbers(self) -> dict[str, float]:
        """The primary system's numeric metrics and the round's, as one flat mapping (what a study's
        cell reports)."""
        values = self.primary_numbers(sem=True)
        values.update({k: v for k, v in self.round.items() if _is_number(v)})
        return values

    def cost_line(self) -> str | None:
        """What the method's training read and its price in annotator-seconds, in one line (None
        for a round that recorded no cost)."""
        if "annotator_seconds" not in self.round:
            return None
        kinds = sorted(k[len("cost.") :] for k in self.round if k.startswith("cost."))
        parts = [f"{self.round[f'cost.{k}']} {k} ({self.round.get(f'seconds.{k}', 0)} s)" for k in kinds]
        measured = f", {self.round['measured_share']:.0%} of it measured by Label Studio" if "measured_share" in self.round else ""
        read = " + ".join(parts) or "no feedback"
        return f"feedback read: {read} = {self.round['annotator_seconds']} annotator-seconds{measured} (cost.*)"


@dataclass
class RoundScores(Scores):
    number: int = 0  # the round, from 1


@dataclass
class RunResult(Scores):
    run: str = ""
    method: str = ""
    seed: int = 0
    finetune_target: str = ""
    selection: str = ""
    eval_split: str = ""
    table: str = ""  # the systems as a Markdown table
    rounds: list[RoundScores] | None = None  # a run of several rounds: each round's scores
    rounds_table: str | None = None
    round_training: str | None = None

    # the file's key order: a person reads it, and earlier runs wrote it so
    _KEYS = ("run", "method", "seed", "finetune_target", "selection", "eval_split", "primary", "systems", "round", "table")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {key: getattr(self, key) for key in self._KEYS}
        if self.rounds is not None:
            data["rounds"] = [{"number": r.number, "primary": r.primary, "systems": r.systems, "round": r.round} for r in self.rounds]
            data["rounds_table"] = self.rounds_table
            data["round_training"] = self.round_training
        return data

    def write(self, path: str | Path) -> None:
        from ilf.files import atomic_write_json

        atomic_write_json(Path(path), self.to_json())

    def round_scores(self, number: int) -> RoundScores:
        """This run's scores as round ``number`` of a run of several rounds."""
        return RoundScores(primary=self.primary, systems=self.systems, round=self.round, number=number)

    def per_round(self) -> list[Scores]:
        """Each round's scores; a run of one round is its own only round."""
        return list(self.rounds) if self.rounds else [self]

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "metrics.json") -> RunResult:
        missing = [key for key in ("primary", "systems") if key not in data]
        if missing:
            raise ValueError(f"{where}: not a run's metrics (no {', '.join(missing)})")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "rounds"}
        rounds = data.get("rounds")
        if rounds is not None:
            values["rounds"] = [
                RoundScores(primary=r["primary"], systems=r["systems"], round=r.get("round", {}), number=r["number"]) for r in rounds
            ]
        return cls(**values)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """A run's ``metrics.json``."""
        try:
            data = json.loads(Path(path).read_text())
        except ValueError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return cls.from_json(data, str(path))


__all__ = ["Scores", "RoundScores", "RunResult"]
