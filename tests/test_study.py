"""`ilf study`: the SLF5K study config at small sizes on the bundled layout and tiny models."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from ilf.cli import main
from ilf.config import load_config
from ilf.pipeline import Pipeline

STUDY = str(REPO / "experiments" / "slf5k_study.yaml")


def _small(data: Path) -> list[str]:
    sets = [
        "study.sizes=[4,8]",
        "study.seeds=[0,1]",
        f"data.path={data}",
        "data.eval_limit=4",
        "policy.name_or_path=tiny:gpt2",
        "refiner.name_or_path=tiny:gpt2",
        "refiner.seed=1",
        "refine.num_candidates=2",
        "refine.sampling.max_new_tokens=8",
        "refine.sampling.batch_size=8",
        "refine.sampling.max_prompt_tokens=null",
        "refine.sampling.max_resamples=0",
        "evaluation.sampling.max_new_tokens=8",
        "evaluation.sampling.max_prompt_tokens=null",
        "finetune.learning_rate=1.0e-3",
        "finetune.per_device_train_batch_size=4",
        "finetune.gradient_accumulation_steps=1",
        "metric_options.judge_win_rate.model.name_or_path=tiny:gpt2",  # the study's judge is a 7B model: a tiny one here
        "method_options.sdft.learning_rate=1.0e-3",
    ]
    return [arg for s in sets for arg in ("--set", s)]


def _stage_markers(cells: Path) -> dict[str, dict]:
    return {str(p.relative_to(cells)): json.loads(p.read_text()) for p in sorted(cells.glob("*/.ilf/stages/*.json"))}


@pytest.mark.slow
def test_study_runs_every_cell_shares_the_round_and_reports_the_cells_metrics(slf5k_dir: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "study"
    assert main(["study", STUDY, "--run-dir", str(run_dir), *_small(slf5k_dir)]) == 0
    printed = capsys.readouterr().out
    cells = sorted(p.name for p in (run_dir / "cells").iterdir())
    assert len(cells) == 2 * 4 * 2  # seeds x methods x sizes
    assert "seed1-sft_reference-n8" in cells and "seed0-sdft-n4" in cells and "[16/16]" in printed
    assert "| method | judge_win_rate | rouge1 |" in printed  # the LM judge's win rate against the human summaries leads
    for row in json.loads((run_dir / "cells.json").read_text()):
        judged = row["metrics"]
        assert 0.0 <= judged["judge_win_rate"] <= 1.0 and 0.0 <= judged["judge_position_bias"] <= 1.0, row["cell"]

    # One seed's feedback round is computed in one cell and linked into the others.
    markers = _stage_markers(run_dir / "cells")
    for seed in (0, 1):
        refine = [m for name, m in markers.items() if name.startswith(f"seed{seed}-") and name.endswith("/refine.json")]
        assert len(refine) == 2  # ilf at both sizes; the SFT baselines do not refine
        assert sum("shared_from" not in m for m in refine) == 1
    data = [m for name, m in markers.items() if name.endswith("/data.json")]  # the same rows for every seed
    assert sum("shared_from" not in m for m in data) == 1 and len(data) == 16

    # Nested sizes: the n4 cell trained on the first 4 of the round's 8 samples.
    small = json.loads((run_dir / "cells" / "seed0-ilf-n4" / "model" / "train_metrics.json").read_text())
    large = json.loads((run_dir / "cells" / "seed0-ilf-n8" / "model" / "train_metrics.json").read_text())
    assert (small["pairs"], large["pairs"]) == (4, 8)

    # The report's numbers are the cells' metrics.
    summary = json.loads((run_dir / "summary.json").read_text())
    group = next(g for g in summary if g["method"] == "ilf" and g["size"] == 8)
    values = [
        json.loads((run_dir / "cells" / f"seed{s}-ilf-n8" / "metrics.json").read_text())["systems"]["finetuned"]["rougeL"] for s in (0, 1)
    ]
    assert group["metrics"]["rougeL"]["mean"] == pytest.approx(sum(values) / 2)
    assert group["metrics"]["rougeL"]["n"] == 2
    report = (run_dir / "report.md").read_text()
    assert "## 8 training samples" in report and "| sft_reference |" in report
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "cells.csv").read_text().count("\n") == 17
    assert len(json.loads((run_dir / "cells.json").read_text())) == 16

    # Every cell is an ordinary run directory that `ilf run` finds up to date.
    cell = run_dir / "cells" / "seed1-ilf-n4"
    pipeline = Pipeline(load_config(cell / "config.yaml"), cell)
    assert set(pipeline.status().values()) == {"done"}
    before = _stage_markers(run_dir / "cells")
    assert main(["run", str(cell / "config.yaml"), "--run-dir", str(cell)]) == 0
    assert main(["study", STUDY, "--run-dir", str(run_dir), *_small(slf5k_dir)]) == 0
    assert capsys.readouterr().out.count("up to date") >= 16
    assert _stage_markers(run_dir / "cells") == before  # nothing was recomputed


@pytest.mark.slow
def test_killed_study_resumes_at_the_cell_where_it_stopped(slf5k_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "study"
    command = [sys.executable, "-m", "ilf", "study", STUDY, "--run-dir", str(run_dir), *_small(slf5k_dir), "--set", "study.seeds=[0]"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_cell = run_dir / "cells" / "seed0-ilf-n4" / "metrics.json"
    deadline = time.time() + 300
    while not first_cell.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first_cell.exists(), "the first cell never finished"
    finished = json.loads((run_dir / "cells" / "seed0-ilf-n4" / ".ilf" / "stages" / "evaluate.json").read_text())["finished"]
    assert not (run_dir / "report.md").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[1/8] seed0-ilf-n4: up to date" in again.stdout
    assert json.loads((run_dir / "cells" / "seed0-ilf-n4" / ".ilf" / "stages" / "evaluate.json").read_text())["finished"] == finished
    assert (run_dir / "report.md").exists() and len(json.loads((run_dir / "cells.json").read_text())) == 8


def test_study_config_errors_name_the_key(tmp_path: Path, capsys) -> None:
    assert main(["study", STUDY, "--run-dir", str(tmp_path / "s"), "--set", "study.methods=[ilf, ilff]"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'ilff'" in err and "did you mean 'ilf'" in err and err.count("\n") == 1
    assert main(["study", STUDY, "--run-dir", str(tmp_path / "s"), "--set", "study.seed=[1]"]) == 2
    assert "study.seed" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_contrasts_pair_seeds_and_gates_say_whether_they_hold(tmp_path: Path) -> None:
    from ilf.study import StudyConfig, contrasts, write_report

    def row(method: str, seed: int, recall: float, **more: float) -> dict:
        return {
            "cell": f"{method}{seed}",
            "method": method,
            "seed": seed,
            "size": 100,
            "dir": "",
            "system": "finetuned",
            "metrics": {"recall": recall, **more},
            "rounds": [],
            "stages": {},
        }

    rows = [
        row("ilf", 0, 0.50, **{"hit.embedding": 0.7, "hit.random": 0.6}),
        row("ilf", 1, 0.60, **{"hit.embedding": 0.8, "hit.random": 0.6}),
        row("ilf", 2, 0.70, **{"hit.embedding": 0.9, "hit.random": 0.6}),
        row("base", 0, 0.40),
        row("base", 1, 0.45),
        row("base", 2, 0.60),
        row("base", 3, 0.99),
    ]  # a seed the other method lacks is not paired
    study = StudyConfig(methods=["ilf", "base"], contrasts=["ilf - base", "ilf: hit.embedding - hit.random"], gates=["base recall >= 0.5"])
    found = {c["contrast"]: c for c in contrasts(study, rows, ["recall"])}
    diffs = [0.10, 0.15, 0.10]
    mean, sd = sum(diffs) / 3, (sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2) ** 0.5
    assert found["ilf - base"]["n"] == 3 and found["ilf - base"]["mean"] == pytest.approx(mean)
    assert found["ilf - base"]["high"] - found["ilf - base"]["mean"] == pytest.approx(4.303 * sd / 3**0.5)
    assert found["ilf: hit.embedding - hit.random"]["mean"] == pytest.approx(0.2)
    report = write_report(study, rows, tmp_path, "s")["report"]
    assert "| ilf - base | recall | 100 samples | +0.117 |" in report
    assert "| base recall >= 0.5 | 100 samples | 0.610 | yes |" in report
    study.gates = ["base recall >= 0.7"]
    assert "**NO**" in write_report(study, rows, tmp_path, "s")["report"]


def test_cells_say_how_many_seeds_they_average_and_counts_show_each_seed(tmp_path: Path) -> None:
    from ilf.study import StudyConfig, write_report

    def row(method: str, seed: int, recall: float, cost: int) -> dict:
        metrics = {"recall": recall, "annotator_seconds": cost}
        return {
            "cell": f"{method}{seed}",
            "method": method,
            "seed": seed,
            "size": None,
            "dir": "",
            "system": "finetuned",
            "metrics": metrics,
        }

    rows = [row("ilf", 0, 0.5, 100), row("ilf", 1, 0.6, 100), row("ilf", 2, 0.7, 100)]
    rows += [row("dpo", 0, 0.4, 195), row("dpo", 1, 0.5, 341)]  # seed 2's run is missing
    study = StudyConfig(methods=["ilf", "dpo"], seeds=[0, 1, 2], report_metrics=["recall", "annotator_seconds"])
    failed = [{"cell": "seed2-dpo", "error": "ValueError: out of patience", "traceback": "cells/seed2-dpo/error.txt"}]
    report = write_report(study, rows, tmp_path, "s", failed=failed)["report"]
    assert "| ilf | 0.600 ± 0.100 (0.058) | 100 |" in report  # every seed: no n, one count
    assert "| dpo | 0.450 ± 0.071 (0.050; n=2) | 195 / 341 (n=2) |" in report
    assert "**1 of 6 runs failed**" in report and "| seed2-dpo | ValueError: out of patience | cells/seed2-dpo/error.txt |" in report
    assert json.loads((tmp_path / "failed.json").read_text()) == failed


def test_a_failed_cell_is_reported_and_the_others_still_run(slf5k_dir: Path, tmp_path: Path, capsys) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(
        f"base: {STUDY}\n"
        "study:\n"
        "  methods: [before, broken]\n"
        "  sizes: [4]\n"
        "  contrasts: []\n"
        "  gates: []\n"
        "  variants:\n"
        f"    broken: {{method: before, set: [data.eval_path={tmp_path / 'missing.jsonl'}]}}\n"
        "evaluation: {metrics: [rouge]}\n"
    )
    run_dir = tmp_path / "run"
    assert main(["study", str(study), "--run-dir", str(run_dir), *_small(slf5k_dir)]) == 1
    captured = capsys.readouterr()
    assert "seed1-broken: FAILED: FileNotFoundError" in captured.out and "2 runs of the study failed" in captured.err
    report = (run_dir / "report.md").read_text()
    assert "**2 of 4 runs failed**" in report and "| before |" in report and "| broken |" not in report
    assert "missing.jsonl" in (run_dir / "cells" / "seed0-broken" / "error.txt").read_text()
