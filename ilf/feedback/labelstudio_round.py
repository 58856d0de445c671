"""A feedback round with people: push the round's outputs to Label Studio, wait, pull.

The feedback stage of each round (``rounds: K``, ``ilf loop``) pushes the policy's outputs as
tasks of the round's own project (``labelstudio.project``, ``{round}`` filled in), with the
output also attached as a prediction whose ``model_version`` names the policy that wrote it;
then waits until ``labelstudio.min_annotations`` of them are annotated or skipped, or
``labelstudio.deadline`` passes, and pulls the critiques. One project per round: each round's
queue, counts and deadline are its own, a person opening Label Studio sees the round that is
open, and nothing needs a filtered view (views are per-user settings in the Community edition).

Stopping anywhere loses nothing: the push skips tasks already in the project, the annotations
live on the server, and the pull merges only what it has not seen. The stage is done once the
round closed; annotations that arrive later belong to no round.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ilf.feedback import FeedbackSource
from ilf.feedback.labelstudio import FEEDBACK_FILE
from ilf.files import atomic_write_json
from ilf.labelstudio.client import LabelStudio, LabelStudioError, resolve_connection
from ilf.labelstudio.sync import build_tasks, pull, push
from ilf.layout import is_round_dir
from ilf.lifetime import die_with_parent
from ilf.records import Feedback, Output, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.config import RunConfig
    from ilf.view import RunView

log = logging.getLogger(__name__)

EXPORT = "labelstudio_export.json"
ROUND_FILE = "labelstudio_round.json"  # the round's state in its run directory: pushed, waited, pulled


def project_title(run: RunView) -> str:
    return run.config.labelstudio.project.replace("{round}", "1").replace("{name}", run.config.name)


def model_version(run: RunView) -> str:
    """The policy that wrote the outputs, readable in Label Studio: a round's model is
    ``round-k``, anything else its name or folder."""
    path = Path(run.outputs_model.name_or_path)
    if path.name == "model" and is_round_dir(path.parent):
        return f"{run.config.name} {path.parent.name}"
    return f"{run.config.name} {path.name or path}"


def data_dir(run: RunView) -> Path:
    from ilf.labelstudio.server import default_home

    return Path(run.config.labelstudio.data_dir or default_home() / "data").expanduser()


def connect(run: RunView) -> LabelStudio:
    """A client for the configured server; with no URL anywhere, the local one, started if needed."""
    ls = run.config.labelstudio
    if ls.url is None and os.environ.get("LABEL_STUDIO_URL") is None and ls.start_server:
        from ilf.labelstudio.server import start_server

        start_server(data_dir(run), port=ls.port)
    return LabelStudio(resolve_connection(ls.url, data_dir(run)))


@FEEDBACK_SOURCES.register(
    "labelstudio_round",
    help="People in Label Studio, round by round: push the outputs to the round's project, wait for "
    "labelstudio.min_annotations (or labelstudio.deadline), pull the critiques.",
)
class LabelStudioRound(FeedbackSource):
    moved = {"feedback.url": "labelstudio.url", "feedback.data_dir": "labelstudio.data_dir"}

    def round_config(self, config: RunConfig, k: int) -> RunConfig:
        import dataclasses

        ls = config.labelstudio  # each round its own project: "{round}" in the title is the round's number
        return dataclasses.replace(config, labelstudio=dataclasses.replace(ls, project=ls.project.replace("{round}", str(k))))

    def status_note(self, run: RunView) -> str | None:
        path = run.paths.root / ROUND_FILE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        return (
            f"waiting for annotations in {state['project']!r}: {state['annotated']}/{state['tasks']} annotated, "
            f"{state['skipped']} skipped, closes at {state['needed']} (as of {state['checked_at']})"
        )

    def collect(self, run: RunView) -> tuple[list[Feedback], Path]:
        client = connect(run)
        title = project_title(run)
        outputs = read_records(run.paths.outputs, Output)
        tasks = build_tasks("feedback", run.samples(), outputs, model_version=model_version(run))
        pushed = push(client, title, "feedback", tasks)
        log.info("project %r (id %d): %d tasks pushed, %d already there", title, pushed.project_id, pushed.imported, pushed.already_present)
        annotator = self._start_annotator(run, client, pushed.project_id)
        try:
            self._wait(run, client, title, pushed.project_id, len(tasks))
        finally:
            if annotator is not None and annotator.poll() is None:
                annotator.terminate()
                annotator.wait(timeout=30)
        result = pull(client, title, run.paths.root / FEEDBACK_FILE, template="feedback")
        # what the round's summary page (`ilf loop`) is made of: the project as it was when the round closed
        emails = {str(k): v for k, v in result.emails.items()}
        atomic_write_json(run.paths.root / EXPORT, {"project": title, "template": "feedback", "tasks": result.tasks, "emails": emails})
        c = result.counts
        log.info("round closed: %d critiques pulled from %r (%d skipped, %d empty)", len(result.records), title, c.cancelled, c.empty)
        return read_records(run.paths.root / FEEDBACK_FILE, Feedback), run.paths.root / FEEDBACK_FILE

    def _wait(self, run: RunView, client: LabelStudio, title: str, project_id: int, tasks: int) -> None:
        from ilf.labelstudio.webhooks import WebhookReceiver, register

        ls = run.config.labelstudio
        needed = ls.needed(tasks)
        state_path = run.paths.root / ROUND_FILE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        pushed_at = state.get("pushed_at") or time.time()  # the deadline runs from the first push, across restarts
        tty = sys.stderr.isatty()
        last_line, logged_done, logged_at = "", -1, 0.0
        with contextlib.ExitStack() as cleanup:
            receiver = cleanup.enter_context(WebhookReceiver()) if ls.webhook else None
            if receiver is not None:
                hook = client._call("register a webhook", lambda: register(client.sdk, project_id, receiver.url))
                cleanup.callback(_remove_webhook, client, hook)
            if tty:
                cleanup.callback(print, file=sys.stderr)  # end the progress line
            while True:
                project = client._call(f"read project {project_id}", lambda: client.sdk.projects.get(project_id))
                annotated = int(project.num_tasks_with_annotations or 0)
                skipped = int(project.skipped_annotations_number or 0)
                done = min(tasks, annotated + skipped)
                state = {
                    "project": title,
                    "project_id": project_id,
                    "tasks": tasks,
                    "annotated": annotated,
                    "skipped": skipped,
                    "needed": needed,
                    "pushed_at": pushed_at,
                    "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                }
                atomic_write_json(state_path, state)
                line = f"{title}: {annotated}/{tasks} annotated, {skipped} skipped (round closes at {needed})"
                if tty:
                    print(f"\r{line}", end="", file=sys.stderr, flush=True)
                # The log gets a line per tenth of the round, or twice a minute while it moves.
                step = max(1, tasks // 10)
                if line != last_line and (done - logged_done >= step or time.monotonic() - logged_at >= 30 or done >= needed):
                    log.info(line)
                    last_line, logged_done, logged_at = line, done, time.monotonic()
                if done >= needed:
                    break
                if ls.deadline is not None and time.time() - pushed_at >= ls.deadline:
                    log.warning("%s: the deadline (%.0f s) passed with %d of %d tasks done", title, ls.deadline, done, needed)
                    break
                if receiver is not None:
                    receiver.event.wait(ls.poll_seconds)
                    receiver.event.clear()
                else:
                    time.sleep(ls.poll_seconds)

    def _start_annotator(self, run: RunView, client: LabelStudio, project_id: int) -> subprocess.Popen[bytes] | None:
        ls = run.config.labelstudio
        if ls.annotator != "simulated":
            return None
        from ilf.labelstudio.annotator import annotator_account

        account = annotator_account(client.connection, data_dir(run))
        command = [
            sys.executable,
            "-m",
            "ilf",
            "labelstudio",
            "annotate",
            "--url",
            client.url,
            "--project-id",
            str(project_id),
            "--run-dir",
            str(run.paths.root),
            "--delay",
            str(ls.annotator_delay),
            "--skip-share",
            str(ls.skip_share),
        ]
        # The token travels in the environment, not on a command line that `ps` shows.
        env = {**os.environ, "ILF_ANNOTATOR_TOKEN": account.token}
        log.info("simulated annotator %s starts on project %d", account.email, project_id)
        return subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )  # never two annotators taking the same tasks


def write_round_summary(round_dir: Path, number: int | None = None) -> Path | None:
    """``labelstudio_summary.md`` and ``.json`` of a round whose feedback came from Label Studio:
    its annotators, skips, lead times, agreement and metrics; None for a round without an export."""
    from ilf.labelstudio.summary import SUMMARY_MD, write_summary

    export_path = round_dir / EXPORT
    if not export_path.exists():
        return None
    export = json.loads(export_path.read_text())
    emails = {int(k): v for k, v in export.get("emails", {}).items()}
    write_summary(round_dir, export["tasks"], export["template"], emails, export["project"], number, round_dir / "metrics.json")
    return round_dir / SUMMARY_MD


def _remove_webhook(client: LabelStudio, hook: int) -> None:
    try:
        client._call("remove the webhook", lambda: client.sdk.webhooks.delete(hook))
    except LabelStudioError as err:  # a hook left behind is replaced by the next round's
        log.warning("%s", err)
