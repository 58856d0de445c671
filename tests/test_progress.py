"""Progress of long stages reaches a log file as lines, not as a carriage-return bar."""

import logging

from ilf.progress import _LogProgress, progress


def test_progress_off_a_terminal_logs_counts(caplog) -> None:
    caplog.set_level(logging.INFO, logger="ilf.progress")
    bar = progress(10, "refine", unit="prompt", interval=0.0)  # pytest's captured stderr is not a terminal
    assert isinstance(bar, _LogProgress)
    with bar:
        for _ in range(10):
            bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("refine: 1/10 prompts") and lines[-1].startswith("refine: 10/10 prompts in ")
    assert len(lines) == 10  # nine updates before the end, each past the interval, and the closing line
