"""A study: a base run config swept over methods, training sizes, seeds and any other key.

    ilf study experiments/slf5k_study.yaml --run-dir runs/slf5k_study

A study config is a run config plus a ``study`` section. Every cell is an ordinary run directory
(``cells/<name>/``, with its own resolved ``config.yaml``: ``ilf run <cell>/config.yaml --run-dir
<cell>`` finds it up to date). Sizes are nested like SLF5K's 100 in 1K in 5K: every cell of a seed
runs its feedback round on the largest size and trains on the first N samples
(``finetune.train_samples``), so a stage whose reads are the same for several cells is computed once, in whichever
cell comes first, and linked into the others through ``.shared/``. A killed study resumes at the
cell and stage where it stopped. The report (``report.md``, ``report.png``, ``cells.csv``,
``cells.json``, ``summary.json``) is computed from the cells' ``metrics.json`` and nothing else.

The parts: ``config`` (the ``study`` section; light, no model library), ``cells`` (the cells and
running one), ``executors`` (where cells run: here, local processes, a Ray cluster), ``run`` (a
whole study), ``statistics`` (over seeds: means, contrasts, gates), ``report`` (the files a
study writes). Names are imported from their module when first asked for, so reading a study's
settings does not import what running one needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Variant": "config",
    "StudyConfig": "config",
    "load_study": "config",
    "Cell": "cells",
    "cells": "cells",
    "run_study": "run",
    "aggregate": "statistics",
    "contrasts": "statistics",
    "gates": "statistics",
    "write_report": "report",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ilf.study' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ilf.study.{home}"), name)


__all__ = list(_HOMES)
