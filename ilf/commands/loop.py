"""`ilf loop`: rounds whose feedback comes from people in Label Studio, and the table of what they did."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ilf.config import RunConfig
from ilf.evaluation import format_table
from ilf.feedback.labelstudio_round import ROUND_FILE, write_round_summary
from ilf.labelstudio.summary import SUMMARY_MD
from ilf.layout import round_dir
from ilf.results import RunResult

log = logging.getLogger(__name__)

SOURCE = "labelstudio_round"  # the feedback source whose rounds wait for people


def run_loop(config: RunConfig, run_dir: Path) -> str:
    """Run (or resume) the config's rounds with people's critiques; the table of each round's
    tasks, annotations and primary metrics."""
    from ilf.pipeline import Pipeline, RunPaths
    from ilf.rounds import Rounds, open_run

    if config.feedback.source != SOURCE:
        log.info("ilf loop: feedback.source %r -> %s (the loop's feedback comes from Label Studio)", config.feedback.source, SOURCE)
        config = dataclasses.replace(config, feedback=dataclasses.replace(config.feedback, source=SOURCE))
    driver = open_run(config, run_dir)

    def summarize(k: int, run: Pipeline) -> None:
        page = write_round_summary(run.paths.root, k)
        if page is not None:
            log.info("round %d: what the annotators did is in %s", k, page)

    if isinstance(driver, Rounds):
        driver.run(after_round=summarize)
    else:
        driver.run()
        summarize(1, driver)
    rows = {}
    for k, entry in enumerate(RunResult.read(RunPaths(run_dir).metrics).per_round(), start=1):
        folder = round_dir(run_dir, k) if config.rounds > 1 else run_dir
        waited = json.loads((folder / ROUND_FILE).read_text())
        rows[str(k)] = {
            "tasks": waited["tasks"],
            "annotated": waited["annotated"],
            "skipped": waited["skipped"],
            **entry.primary_numbers(),
            "summary": str(folder / SUMMARY_MD) if (folder / SUMMARY_MD).exists() else None,
        }
    return format_table(rows, columns=tuple(next(iter(rows.values()))), first="round")
