"""Results pages take their tables from the studies' published reports: a page that disagrees with
its report is stale, and so is a report whose study config changed since it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ilf.docs_tables import DOCUMENTS, REPO, regenerate
from ilf.study import published

REPORT = """# A study

3 runs: methods a, b; seeds 0, 1, 2.

## budget=600, world.preference=cued

| method | recall |
|---|---|
| a | 0.500 ± 0.100 (0.058) |
| b | 0.400 ± 0.100 (0.058) |

![metrics against training size](report.png)

## Contrasts

Paired over seeds.

| contrast | metric | where | mean difference | 95% interval | n |
|---|---|---|---|---|---|
| a - b | recall | budget=600 | +0.100 | [-0.050, +0.250] | 3 |

## Cost

| method | where | training samples | critiques | annotator-seconds |
|---|---|---|---|---|
| a | budget=600 | 10 | 10 | 600 |
"""


def _study_run(tmp_path: Path, base: dict) -> Path:
    run = tmp_path / "runs" / "peers"
    run.mkdir(parents=True)
    (run / "report.md").write_text(REPORT)
    (run / "study.yaml").write_text(yaml.safe_dump({"source": "peers.yaml", "study": {"methods": ["a", "b"]}, "base": base}))
    provenance = {"ilf": "0.1.0", "commit": "abc123", "finished": "2026-12-06T17:00:00+00:00", "seconds": 125.0, "cells": 3}
    (run / "provenance.json").write_text(json.dumps({**provenance, "machine": {"cpu": "AMD EPYC", "cores": 2}, "load_15min": 1.5}))
    return run


def test_a_published_report_fills_the_pages_blocks_and_a_page_that_disagrees_is_stale(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    base = {"name": "peers", "pretraining": {"steps": 1500, "cache_dir": "/home/someone/runs/world-cache"}}
    published.publish(_study_run(tmp_path, base), "peers", reports)
    record = yaml.safe_load((reports / "peers.yaml").read_text())
    assert record["base"] == {"name": "peers", "pretraining": {"steps": 1500}}  # no folder of the machine it ran on
    assert "report.png" not in (reports / "peers.md").read_text()  # its plots stay with the run

    results = published.report_block("peers results", reports)
    assert results.startswith("**budget=600, world.preference=cued**\n\n| method | recall |") and "| b | 0.400" in results
    assert published.report_block("peers contrasts", reports).startswith("Paired over seeds.")
    assert "| a - b | recall | budget=600 | +0.100 | [-0.050, +0.250] | 3 |" in published.report_block("peers contrasts", reports)
    line = published.report_block("peers provenance", reports)
    assert "commit `abc123`" in line and "2 min 5 s for 3 cells" in line and "load average 1.5" in line
    with pytest.raises(ValueError, match="no gates section"):
        published.report_block("peers gates", reports)
    with pytest.raises(ValueError, match="no published report"):
        published.report_block("nothing results", reports)

    page = "# Peers\n\n<!-- generated: report peers contrasts -->\nold numbers\n<!-- /generated -->\n"
    original = published.REPORTS
    published.REPORTS = reports
    try:
        current = regenerate(page, "peers.md")
        assert "+0.100" in current and "old numbers" not in current
        assert regenerate(current, "peers.md") == current  # current: unchanged
        edited = current.replace("+0.100", "+0.120")  # a hand-edited number
        assert regenerate(edited, "peers.md") != edited
    finally:
        published.REPORTS = original


WIDE = "\n".join(
    [
        "| measure | " + " | ".join(f"method_number_{k}" for k in range(12)) + " |",
        "|---|" + "---|" * 12,
        *(f"| {row} | " + " | ".join(f"0.{k:02d}0 ± 0.010 (0.006)" for k in range(12)) + " |" for row in ("recall", "precision")),
    ]
)


def test_a_table_too_wide_for_a_report_page_is_published_in_parts_and_read_whole(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = _study_run(tmp_path, {"name": "peers"})
    (run / "report.md").write_text(REPORT.replace("## Cost", f"## The feedback round (all samples)\n\n{WIDE}\n\n## Cost"))
    text = published.publish(run, "peers", reports).read_text()

    parts = [block for block in text.split("## The feedback round (all samples)")[1].split("## Cost")[0].split("\n\n") if block.strip()]
    assert len(parts) == 2  # as few parts as fit, each with the rows' names
    for part in parts:
        rows = part.splitlines()
        assert [row.split("|")[1].strip() for row in rows] == ["measure", "---", "recall", "precision"]
        assert published._table_width([published._cells(r) for k, r in enumerate(rows) if k != 1]) <= published.REPORT_PAGE_PX
    assert "| a | 0.500 ± 0.100 (0.058) |" in text  # a narrow table is published as it was written
    assert published.split_wide_tables(WIDE, published.REPORT_PAGE_PX) != WIDE

    # read whole again: a value, a block's rows and columns find the column wherever it was published
    assert published.value('peers round "The feedback round" "recall" "method_number_11"', reports) == "0.110 ± 0.010"
    block = published.report_block("peers round rows=precision columns=method_number_11,method_number_0", reports)
    assert block.splitlines() == [
        "| measure | method_number_11 | method_number_0 |",
        "| --- | --- | --- |",
        "| precision | 0.110 ± 0.010 (0.006) | 0.000 ± 0.010 (0.006) |",
    ]
    with pytest.raises(ValueError, match=r"no column named \['method_number_99'\].*columns: method_number_0,"):
        published.report_block("peers round columns=method_number_99", reports)


def test_a_report_whose_study_config_changed_since_it_ran_is_stale(tmp_path: Path) -> None:
    from ilf.config import to_plain
    from ilf.study.config import load_study

    reports = tmp_path / "reports"
    reports.mkdir()
    study, base, _ = load_study(REPO / "ilf" / "studies" / "rounds.yaml", [])
    record = {"study": to_plain(study), "base": published.portable(base), "provenance": {}}
    (reports / "rounds.yaml").write_text(yaml.safe_dump(record))
    assert published.stale_reports(reports) == []
    record["base"]["finetune"]["learning_rate"] = 1.0
    (reports / "rounds.yaml").write_text(yaml.safe_dump(record))
    assert published.stale_reports(reports) == ["rounds: ilf/studies/rounds.yaml changed since its report was published"]


def test_every_results_page_is_generated_from_a_current_report_of_every_study() -> None:
    assert published.stale_reports() == [], "rerun the study (scripts/rerun-studies.sh) and publish it"
    names = {p.stem for p in published.REPORTS.glob("*.yaml")}
    shipped = {p.stem for p in (REPO / "ilf" / "studies").glob("*.yaml")} - {"demo_quick"}
    assert shipped | {"compare_offline"} <= names, "every packaged study has a published report"
    pages = sorted((REPO / "docs" / "studies").glob("*.md"))
    for page in pages:
        text = page.read_text()
        assert "Measured before" not in text, page.name
        if page.name != "index.md":
            assert "<!-- generated: report " in text, f"{page.name} shows no table of a published report"
            assert f"docs/studies/{page.name}" in DOCUMENTS


def test_the_peers_study_uses_the_settings_its_published_tuning_study_chose() -> None:
    """The tuning study's report names, for each tuned method, the setting with the highest recall
    over both worlds (ties to precision, on unrounded means); the peers study runs exactly those."""
    import copy

    from ilf.config import build_config
    from ilf.study.config import load_study

    (choice,) = [body for part, _, body in published.sections("peers_tuning") if part == "choice"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in choice.splitlines() if line.startswith("| ")][1:]
    chosen = {cells[0]: cells[1] for cells in rows}
    assert sorted(chosen) == ["dpo", "rloo", "sdft", "sdpo"] and all(cells[2] == "6" for cells in rows)
    tuning, tuning_base, tuning_source = load_study(REPO / "ilf" / "studies" / "peers_tuning.yaml", [])
    peers, peers_base, peers_source = load_study(REPO / "ilf" / "studies" / "peers.yaml", [])
    for method, best in chosen.items():
        tuned = build_config(copy.deepcopy(tuning_base), tuning_source, tuning.variants[best].set)
        used = build_config(copy.deepcopy(peers_base), peers_source, peers.variants[method].set if method in peers.variants else [])
        assert used.method_options[method] == tuned.method_options[method], (method, best)
        assert used.feedback_options == tuned.feedback_options, (method, best)


def test_the_code_study_uses_the_pretraining_and_recipe_its_published_tuning_study_chose() -> None:
    """code_tuning tries pre-training lengths and learning rates for the gate's method on development
    pre-training seeds and validation tasks; the code study pre-trains and fine-tunes as it chose."""
    import copy
    import dataclasses

    from ilf.config import build_config
    from ilf.study.config import load_study

    (choice,) = [body for part, _, body in published.sections("code_tuning") if part == "choice"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in choice.splitlines() if line.startswith("| ")][1:]
    assert [cells[0] for cells in rows] == ["sft_reference"]
    tuning, tuning_base, tuning_source = load_study(REPO / "ilf" / "studies" / "code_tuning.yaml", [])
    code, code_base, code_source = load_study(REPO / "ilf" / "studies" / "code.yaml", [])
    tuned = build_config(copy.deepcopy(tuning_base), tuning_source, tuning.variants[rows[0][1]].set)
    used = build_config(copy.deepcopy(code_base), code_source, [])
    assert set(code.axes) == set(tuning.axes) == {"pretraining.seed"} and not set(code.axes["pretraining.seed"]) & set(
        tuning.axes["pretraining.seed"]
    )
    assert dataclasses.replace(used.pretraining, seed=0) == dataclasses.replace(tuned.pretraining, seed=0)
    assert used.finetune == tuned.finetune
    assert tuned.data.eval_split == "validation" and used.data.eval_split == "test" and tuned.seed not in code.seeds


def test_a_tuning_study_chooses_on_unrounded_means_and_breaks_ties_by_the_next_metric() -> None:
    from ilf.study import StudyConfig
    from ilf.study.config import Variant
    from ilf.study.report import choices

    def group(label: str, world: str, recall: float, precision: float) -> dict:
        return {
            "method": label,
            "axes": {"world": world},
            "size": None,
            "metrics": {"recall": {"mean": recall}, "precision": {"mean": precision}},
        }

    study = StudyConfig(
        methods=["a1", "a2", "b1"],
        variants={"a1": Variant(method="dpo"), "a2": Variant(method="dpo"), "b1": Variant(method="sdft")},
        choose=["recall", "precision"],
    )
    summary = [group("a1", "x", 0.9425, 0.97), group("a1", "y", 0.87, 0.70), group("a2", "x", 0.93, 0.96), group("a2", "y", 0.8825, 0.76)]
    summary += [group("b1", "x", 0.5, 0.5)]
    rows = {r["method"]: r for r in choices(study, summary)}
    assert rows["dpo"]["chosen"] == "a2" and rows["dpo"]["recall"] == pytest.approx(0.90625)  # a tie on recall: precision decides
    assert rows["sdft"]["chosen"] == "b1" and rows["sdft"]["of"] == 1
