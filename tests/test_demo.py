import json
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.demo.study import METHODS


@pytest.mark.slow
def test_quick_demo_end_to_end_then_cached(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "demo"
    assert main(["demo", "--quick", "--run-dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    rows = results["summary"]["table"]["100"]
    assert set(rows) == set(METHODS)
    for method in METHODS:
        for metric in ("recall", "precision", "rougeL"):
            value = rows[method][metric]["mean"]
            assert 0.0 <= value <= 1.0, (method, metric, value)
        assert f"| {method} |" in printed
    selection = results["summary"]["selection"]
    assert 0.0 <= selection["embedding"]["mean"] <= 1.0 and "refiner incorporation rate" in printed
    assert (run_dir / "report.md").read_text().startswith("# ILF on the controlled world")
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pretraining" in results["timings"] and "pretraining (cached)" not in results["timings"]

    assert main(["demo", "--quick", "--run-dir", str(run_dir)]) == 0  # the model is reused, not retrained
    again = json.loads((run_dir / "results.json").read_text())
    assert "pretraining (cached)" in again["timings"] and again["timings"]["pretraining (cached)"] < 5
    assert again["pretrain"] == results["pretrain"]
