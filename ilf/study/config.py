"""A study's own settings (the ``study`` section of a study config) and how one is read.

Light on purpose: ``ilf config --fields`` lists these keys without importing a model library.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ilf.config import ConfigError, apply_overrides, build_config, option, parse_override, read_config_file
from ilf.registry import METHODS
from ilf.schema import build


@dataclass
class Variant:
    method: str = option("ilf", "The registered method this variant runs.")
    set: list[str] = option(help="--set style overrides for this variant's cells only.", factory=list)


@dataclass
class RayConfig:
    address: str | None = option(None, "A running Ray cluster (ray://host:10001 or host:6379); default RAY_ADDRESS, else a local cluster.")
    cpus_per_cell: int = option(1, "CPUs a group of cells reserves, and the CPU threads it uses.")
    local_cpus: int | None = option(
        None, "CPUs of the local cluster a study starts where no address is given (default: all of this machine's)."
    )
    gpus_per_cell: float = option(
        0, "GPUs a group of cells reserves; Ray shows the task only those (CUDA_VISIBLE_DEVICES). A fraction shares a GPU."
    )
    max_retries: int = option(3, "Times a group whose worker died is run again (it resumes at its finished cells and stages).")


@dataclass
class SlurmConfig:
    cluster: Literal["auto", "local"] = option(
        "auto", "auto: SLURM where `sbatch` is on PATH, else local processes (submitit's choice); local: always local processes."
    )
    partition: str | None = option(None, "The SLURM partition of the cells' jobs.")
    cpus_per_task: int = option(2, "CPUs per job (a group of cells), and the CPU threads it uses.")
    gpus_per_node: int = option(0, "GPUs per job.")
    mem_gb: int | None = option(None, "Memory per job in GB (default: the partition's).")
    time_min: int = option(240, "Wall-clock limit per job, minutes.")
    additional: dict[str, Any] = option(help="Other sbatch settings, e.g. {account: mylab, qos: high}.", factory=dict)


@dataclass
class StudyConfig:
    methods: list[str] = option(
        help="Methods (registered names, or names of variants) compared in every seed and size.", factory=lambda: ["ilf"]
    )
    sizes: list[int] = option(
        help="Training-set sizes, nested: each seed's round runs on the largest, each cell trains on "
        "the first N. Empty: data.limit as configured.",
        factory=list,
    )
    budgets: list[float] = option(
        help="Annotator-seconds (priced by cost.*) each method is given, an axis of the report: every cell trains on the "
        "samples its method's own kind of feedback buys (Method.at_budget), at most data.limit; instead of sizes.",
        factory=list,
    )
    seeds: list[int] = option(help="Run seeds (run config `seed`); the report gives mean, std and SEM over them.", factory=lambda: [0])
    axes: dict[str, list[Any]] = option(
        help="Any other config key swept as an axis, e.g. {selection.method: [embedding, random]}.", factory=dict
    )
    variants: dict[str, Variant] = option(
        help="Named methods with their own overrides, e.g. {ilf_random: {method: ilf, set: [selection.method=random]}}.", factory=dict
    )
    report_metrics: list[str] = option(help="Columns of the report (default: every metric's columns).", factory=list)
    contrasts: list[str] = option(
        help="Paired differences over seeds, with a 95% t-interval: 'ilf - sft_initial' (two methods, on contrast_metrics) "
        "or 'ilf: hit.embedding - hit.random' (two metrics of one method's cells).",
        factory=list,
    )
    contrast_metrics: list[str] = option(help="Metrics of the method contrasts (default: the first two report metrics).", factory=list)
    choose: list[str] = option(
        help="A tuning study's choice: for each method, the variant with the highest mean of the first metric named, "
        "over every axis value and seed (ties broken by the next metric); the report's 'Choice' section names it.",
        factory=list,
    )
    gates: list[str] = option(
        help="Checks a comparison rests on, e.g. 'sft_reference recall >= 0.9': the report says at every size whether they hold; "
        "'... at 100' checks one size (where enough training data should reach the threshold).",
        factory=list,
    )
    workers: int = option(
        1,
        "Processes that run cells at once on this machine, each with its share of the CPU threads. Cells that share a "
        "seed and axis values (and so their feedback round) run in the same process, one after another.",
    )
    executor: Literal["local", "ray", "slurm"] = option(
        "local",
        "Where cells run: local (this machine, study.workers processes), ray (tasks of a Ray cluster, study.ray) or "
        "slurm (a job per group of cells through submitit, study.slurm).",
    )
    ray: RayConfig = option(help="The Ray cluster of study.executor ray.", factory=RayConfig)
    slurm: SlurmConfig = option(help="The SLURM jobs of study.executor slurm.", factory=SlurmConfig)
    title: str = option("", "Heading of the report (default: the run name).")
    notes: str = option("", "Markdown appended to the report (what the metrics mean, say).")


def load_study(path: str | Path, overrides: list[str] | None = None) -> tuple[StudyConfig, dict[str, Any], str]:
    """The study section and the base run config (raw, validated once) of a study config file."""
    raw = read_config_file(path)
    study_raw = raw.pop("study", None) or {}
    if not isinstance(study_raw, dict):
        raise ConfigError(path, None, "study", "must be a mapping")
    run_overrides = []
    for text in overrides or []:
        keys, _ = parse_override(text)
        if keys[0] == "study":
            apply_overrides(study_raw, [text.partition(".")[2]])
        else:
            run_overrides.append(text)
    source = str(path) + (" (with --set)" if overrides else "")
    try:
        study = build(StudyConfig, study_raw, ConfigError, source)
    except ConfigError as err:
        raise ConfigError(source, err.line, f"study.{err.field}" if err.field else "study", err.problem) from None
    for index, text in enumerate(study.contrasts):
        try:
            parse_contrast(text)
        except ValueError as err:
            raise ConfigError(source, None, f"study.contrasts[{index}]", str(err)) from None
    for index, text in enumerate(study.gates):
        try:
            size = parse_gate(text)[4]
        except ValueError as err:
            raise ConfigError(source, None, f"study.gates[{index}]", str(err)) from None
        if size is not None and size not in study.sizes:
            raise ConfigError(source, None, f"study.gates[{index}]", f"size {size} is not one of study.sizes {study.sizes}")
    for field_name, values in (("methods", study.methods), ("seeds", study.seeds)):
        if not values:
            raise ConfigError(source, None, f"study.{field_name}", "must list at least one")
    for label in study.methods:
        method = study.variants[label].method if label in study.variants else label
        if method not in METHODS:
            METHODS.get(method)  # raises with the registered names and the closest one
    if study.ray.cpus_per_cell < 1 or study.ray.max_retries < 0 or study.ray.gpus_per_cell < 0:
        raise ConfigError(source, None, "study.ray", "cpus_per_cell must be at least 1, gpus_per_cell and max_retries at least 0")
    if study.slurm.cpus_per_task < 1 or study.slurm.time_min < 1 or study.slurm.gpus_per_node < 0:
        raise ConfigError(source, None, "study.slurm", "cpus_per_task and time_min must be at least 1, gpus_per_node at least 0")
    if study.workers < 1:
        raise ConfigError(source, None, "study.workers", f"must be at least 1, got {study.workers}")
    if any(size < 1 for size in study.sizes):
        raise ConfigError(source, None, "study.sizes", f"sizes must be positive, got {study.sizes}")
    if study.budgets and study.sizes:
        raise ConfigError(source, None, "study.budgets", "a study gives its cells either sizes or budgets, not both")
    if any(budget <= 0 for budget in study.budgets):
        raise ConfigError(source, None, "study.budgets", f"budgets are positive annotator-seconds, got {study.budgets}")
    if "budget" in study.axes:
        raise ConfigError(source, None, "study.axes.budget", "'budget' is the axis study.budgets makes; set study.budgets instead")
    base = apply_overrides(raw, run_overrides)
    build_config(copy.deepcopy(base), source)  # a bad base config fails before any cell runs
    return study, base, source


def parse_contrast(text: str) -> tuple[str | None, str, str]:
    """'a - b' (methods) or 'method: m1 - m2' (metrics of one method): (method or None, a, b)."""
    method, _, rest = text.rpartition(":") if ":" in text else (None, "", text)
    left, sep, right = rest.partition(" - ")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f"expected 'a - b' or 'method: metric_a - metric_b', got {text!r}")
    return (method.strip() if method else None), left.strip(), right.strip()


def parse_gate(text: str) -> tuple[str, str, str, float, int | None]:
    """(method, metric, '>=' or '<=', threshold, size or None for every size) of a gate's text."""
    parts = text.split()
    if len(parts) not in (4, 6) or parts[2] not in (">=", "<=") or (len(parts) == 6 and parts[4] != "at"):
        raise ValueError(f"expected 'method metric >= value' (or <=), optionally followed by 'at SIZE', got {text!r}")
    try:
        threshold = float(parts[3])
    except ValueError:
        raise ValueError(f"the threshold of {text!r} is not a number") from None
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], threshold, None
    if not parts[5].isdigit():
        raise ValueError(f"the size of {text!r} ('at {parts[5]}') is not a whole number")
    return parts[0], parts[1], parts[2], threshold, int(parts[5])


__all__ = ["Variant", "RayConfig", "SlurmConfig", "StudyConfig", "load_study", "parse_contrast", "parse_gate"]
