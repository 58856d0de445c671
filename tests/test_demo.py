import dataclasses
import json
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.config import load_config
from ilf.pipeline import Pipeline

METHODS = ("before", "ilf", "ilf_random", "refine_no_feedback", "sft_initial", "sft_reference")


@pytest.mark.slow
def test_quick_demo_is_a_study_of_ordinary_runs_in_both_worlds_and_reruns_as_up_to_date(tmp_path: Path, capfd) -> None:
    # capfd, not capsys: the cells run in two worker processes (study.workers: 2), which print to the file descriptor
    run_dir = tmp_path / "demo"
    assert main(["demo", "--smoke", "--run-dir", str(run_dir)]) == 0
    printed = capfd.readouterr().out
    assert "running 2 groups of cells in 2 processes" in printed
    cells = json.loads((run_dir / "cells.json").read_text())
    rows = {(row["method"], row["axis:world.preference"]): row for row in cells}
    assert set(rows) == {(m, w) for m in METHODS for w in ("cued", "hidden")}
    for (method, world), row in rows.items():
        assert f"| {method} |" in printed
        # the report's numbers are the cell's own metrics
        metrics = json.loads((Path(row["dir"]) / "metrics.json").read_text())
        assert row["metrics"]["recall"] == metrics["systems"][metrics["primary"]]["recall"]
        for metric in ("recall", "precision", "faithful"):
            assert 0.0 <= row["metrics"][metric] <= 1.0, (method, world, metric)
    assert "world.preference=hidden" in printed and "world.preference=cued" in printed
    # the report says which type the held-out outputs were sampled in (the suite sets float32)
    assert "Held-out outputs sampled in float32 (`policy.dtype`" in printed
    assert {row["dtype"] for row in cells} == {"float32"}
    ilf = rows[("ilf", "hidden")]["metrics"]
    assert {"hit.embedding", "hit.embedding_edit", "hit.instruct_rm", "hit.random", "hit.any_candidate"} <= set(ilf)
    assert ilf["hit.any_candidate"] >= max(ilf["hit.embedding"], ilf["hit.random"], ilf["hit.instruct_rm"])
    assert rows[("sft_reference", "hidden")]["metrics"]["targets.recall"] == 1.0  # references state every salient fact
    # the gate and the contrasts are in the report, computed from the cells
    assert "| sft_reference recall >= 0.9 | 100 samples · world.preference=hidden |" in printed
    contrasts = json.loads((run_dir / "contrasts.json").read_text())["contrasts"]
    hidden = {
        c["contrast"]: c
        for c in contrasts
        if c["axes"] == {"world.preference": "hidden"} and c["metric"] in ("recall", "hit.embedding - hit.random")
    }
    assert hidden["ilf - refine_no_feedback"]["mean"] == pytest.approx(
        ilf["recall"] - rows[("refine_no_feedback", "hidden")]["metrics"]["recall"]
    )
    assert hidden["ilf: hit.embedding - hit.random"]["mean"] == pytest.approx(ilf["hit.embedding"] - ilf["hit.random"])
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((tmp_path / "world-cache").glob("world-model-*/config.json"))) == 1  # one model serves both worlds

    for row in cells:  # every cell is an `ilf run` directory that is up to date
        cell = Path(row["dir"])
        assert set(Pipeline(load_config(cell / "config.yaml"), cell).status().values()) == {"done"}
    markers = {p: p.read_text() for p in sorted(run_dir.glob("cells/*/.ilf/stages/*.json"))}
    assert main(["demo", "--smoke", "--run-dir", str(run_dir)]) == 0
    assert capfd.readouterr().out.count(": up to date") == len(cells)
    assert {p: p.read_text() for p in sorted(run_dir.glob("cells/*/.ilf/stages/*.json"))} == markers


def test_packaged_studies_are_listed_and_an_unknown_one_is_named(tmp_path: Path, capsys) -> None:
    from ilf.cli import packaged_studies

    assert {"demo", "demo_quick", "rounds", "candidates", "weak_refiner"} <= set(packaged_studies())
    assert main(["demo", "round", "--run-dir", str(tmp_path / "x")]) == 2
    assert "no packaged study 'round'" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_pretrained_at_steps_is_the_world_model_after_fewer_steps(tmp_path: Path) -> None:
    from ilf.config import ModelConfig, PretrainConfig

    config = load_config(None, ["data.loader=facts_world", "task.name=facts", "feedback.source=simulated"])
    config = dataclasses.replace(config, pretraining=PretrainConfig(steps=6, examples=200, cache_dir=str(tmp_path)))
    run = Pipeline(config, tmp_path / "run")
    full, short = (Path(run.resolve(ModelConfig(name_or_path=name)).name_or_path) for name in ("pretrained", "pretrained@3"))
    assert full != short
    assert [json.loads((p / "pretrain_metrics.json").read_text())["steps"] for p in (full, short)] == [6, 3]
    with pytest.raises(ValueError, match="pretrained@STEPS"):
        run.resolve(ModelConfig(name_or_path="pretrained@many"))


def test_pretraining_in_bfloat16_is_another_cached_model_and_says_so(tmp_path: Path) -> None:
    import torch
    import transformers

    from ilf.config import PretrainConfig
    from ilf.demo.models import pretrained_model

    settings = PretrainConfig(steps=6, examples=200, cache_dir=str(tmp_path))
    float32 = pretrained_model(settings)
    bfloat16 = pretrained_model(dataclasses.replace(settings, dtype="bfloat16"))
    assert float32 != bfloat16  # one cache folder per precision
    metrics = {p: json.loads((p / "pretrain_metrics.json").read_text()) for p in (float32, bfloat16)}
    assert [metrics[p]["dtype"] for p in (float32, bfloat16)] == ["float32", "bfloat16"]
    assert metrics[bfloat16]["final_loss"] < metrics[bfloat16]["first_loss"]  # it trained
    # the weights stay float32 (autocast computes in bfloat16) and differ from float32 training's
    one, two = (transformers.AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (float32, bfloat16))
    assert all(v.dtype == torch.float32 for v in two.values())
    assert any(not torch.equal(one[k], two[k]) for k in one)
    from ilf.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"field 'pretraining.dtype': expected one of 'float32', 'bfloat16', got \"float16\""):
        load_config(None, ["pretraining={}", "pretraining.dtype=float16"])
