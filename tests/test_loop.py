"""`ilf loop`: ILF rounds through a real Label Studio server, annotated over HTTP by the simulated
annotator (a user of its own), killed while waiting and while training, and resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from ilf.config import load_config
from ilf.labelstudio.client import LabelStudio
from ilf.labelstudio.sync import build_tasks, push
from ilf.labelstudio.webhooks import WebhookReceiver, register
from ilf.records import Feedback, Output, Sample, read_records
from ilf.rounds import open_run

TASKS_PER_ROUND = 10


def loop_overrides(label_studio, tmp_path: Path, title: str) -> list[str]:
    """loop_offline.yaml made small: a world model of a few steps, 10 tasks a round, a slow annotator."""
    pairs = {
        "labelstudio.url": label_studio["url"],
        "labelstudio.data_dir": str(label_studio["data_dir"]),
        "labelstudio.project": title + " {round}",
        "labelstudio.poll_seconds": 0.5,
        "labelstudio.annotator_delay": 0.4,
        "labelstudio.skip_share": 0.2,
        "data.limit": TASKS_PER_ROUND,
        "data.eval_limit": 20,
        "pretraining.steps": 20,
        "pretraining.examples": 400,
        "pretraining.hidden_size": 32,
        "pretraining.layers": 1,
        "pretraining.cache_dir": str(tmp_path / "world-cache"),
        "finetune.num_train_epochs": 10,
        "refine.num_candidates": 2,
        "selection.method": "random",
    }
    return [item for key, value in pairs.items() for item in ("--set", f"{key}={value}")]


def start_loop(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # A session of its own, so the kill below takes the loop and its annotator like a Ctrl-C or a reboot would.
    return subprocess.Popen(
        [sys.executable, "-m", "ilf", "loop", *args],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(condition, what: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the loop exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def project_tasks(client: LabelStudio, title: str) -> list[dict]:
    project = client.find_project(title)
    assert project is not None, title
    return client.export_tasks(project.id)


def test_loop_runs_two_rounds_through_label_studio_and_resumes_after_kills(label_studio, ls_client, project_title, tmp_path) -> None:
    run_dir = tmp_path / "loop"
    args = ["experiments/loop_offline.yaml", "--run-dir", str(run_dir), *loop_overrides(label_studio, tmp_path, project_title)]
    log = tmp_path / "loop.log"
    round_state = run_dir / "round-1" / "labelstudio_round.json"

    # 1. Killed while waiting for annotations: some are in, the round is open.
    loop = start_loop(args, log)
    wait_for(lambda: round_state.exists() and json.loads(round_state.read_text())["annotated"] >= 2, "annotations", loop, log)
    config = load_config(REPO / "experiments/loop_offline.yaml", args[3:][1::2])
    status = open_run(config, run_dir).status()
    assert status["round-1/feedback"].startswith("pending: waiting for annotations in"), status
    assert f"/{TASKS_PER_ROUND} annotated" in status["round-1/feedback"]
    os.killpg(loop.pid, signal.SIGKILL)
    loop.wait()
    time.sleep(1.0)  # the annotator ends with its parent
    before = [a for t in project_tasks(ls_client, f"{project_title} 1") for a in t["annotations"]]
    assert 2 <= len(before) < TASKS_PER_ROUND

    # 2. Rerun, killed while round 1 fine-tunes.
    loop = start_loop(args, log)
    wait_for(lambda: "stage finetune: running" in log.read_text(), "round 1's fine-tuning", loop, log)
    os.killpg(loop.pid, signal.SIGKILL)
    loop.wait()
    assert not (run_dir / "round-1" / ".ilf" / "stages" / "finetune.json").exists()

    # 3. Rerun to the end.
    loop = start_loop(args, log)
    assert loop.wait(timeout=900) == 0, log.read_text()[-4000:]
    text = log.read_text()
    assert "round 2" in text and "annotated" in text

    for k in (1, 2):
        tasks = project_tasks(ls_client, f"{project_title} {k}")
        assert len(tasks) == TASKS_PER_ROUND  # nothing pushed twice, after three starts
        annotations = [a for t in tasks for a in t["annotations"]]
        assert all(len(t["annotations"]) == 1 for t in tasks)  # every task annotated or skipped once, by one annotator
        assert {a["completed_by"] for a in annotations} != {ls_client.sdk.users.whoami().id}  # not the admin: the annotator's own account
        kept = [a for a in annotations if not a["was_cancelled"]]
        feedback = read_records(run_dir / f"round-{k}" / "feedback.jsonl", Feedback)
        assert len(feedback) == len(kept)  # exactly the annotations that were submitted, none lost or doubled
        assert {f.extra["ls_annotation_id"] for f in feedback} == {a["id"] for a in kept}
        outputs = {o.sample_id: o.text for o in read_records(run_dir / f"round-{k}" / "outputs.jsonl", Output)}
        for task in tasks:
            (prediction,) = ls_client.sdk.predictions.list(task=task["id"])  # which policy wrote what the annotator read
            if k == 2:
                assert prediction.model_version == "loop_offline round-1"
            else:
                assert prediction.model_version.startswith("loop_offline world-model-")
            assert task["data"]["output"] == outputs[task["data"]["sample_id"]]
    samples = [{s.id for s in read_records(run_dir / f"round-{k}" / "samples.jsonl", Sample)} for k in (1, 2)]
    assert not samples[0] & samples[1]  # each round annotates fresh posts

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["number"] for r in metrics["rounds"]] == [1, 2]
    for k in (1, 2):  # each round's summary page: who annotated what, skips, lead times, agreement, metrics
        summary = json.loads((run_dir / f"round-{k}" / "labelstudio_summary.json").read_text())
        waited = json.loads((run_dir / f"round-{k}" / "labelstudio_round.json").read_text())
        (who,) = summary["annotators"]  # one annotator: the simulated one, not the admin
        assert who.startswith("simulated-annotator")
        assert (summary["annotations"], summary["skipped"]) == (waited["annotated"], waited["skipped"])
        assert summary["median_lead_time"] > 0.3  # the annotator spends annotator_delay on each task
        assert summary["agreement"] == {"tasks_with_two_or_more_annotators": 0}
        assert summary["metrics"] == {
            m: v
            for m, v in metrics["rounds"][k - 1]["systems"][metrics["primary"]].items()
            if not m.endswith("_sem") and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        assert f"| {who} | {waited['annotated']} | {waited['skipped']} |" in (run_dir / f"round-{k}" / "labelstudio_summary.md").read_text()

    # 4. A rerun finds everything up to date: nothing pushed, nothing trained.
    done = subprocess.run(
        [sys.executable, "-m", "ilf", "loop", *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"stage \w+: running", done.stderr) is None, done.stderr[-2000:]
    assert all(state == "done" for state in open_run(config, run_dir).status().values())
    rows = [line.split("|")[1:5] for line in done.stdout.splitlines() if re.match(r"\| \d ", line)]
    assert [int(r[0]) for r in rows] == [1, 2]  # the per-round table: round, tasks, annotated, skipped
    assert all(int(r[1]) == TASKS_PER_ROUND and int(r[2]) + int(r[3]) == TASKS_PER_ROUND for r in rows)
    links = [line.rstrip(" |").rsplit("| ", 1)[-1] for line in done.stdout.splitlines() if re.match(r"\| \d ", line)]
    assert links == [str(run_dir / f"round-{k}" / "labelstudio_summary.md") for k in (1, 2)]  # the table links each round's page


def test_webhook_from_the_server_wakes_the_receiver(ls_client, project_title) -> None:
    samples = [Sample(id=f"w{i}", inputs={"post": f"post {i}"}) for i in range(2)]
    outputs = [Output(sample_id=s.id, text=f"summary {i}", system="policy") for i, s in enumerate(samples)]
    pushed = push(ls_client, project_title, "feedback", build_tasks("feedback", samples, outputs))
    with WebhookReceiver() as receiver:
        register(ls_client.sdk, pushed.project_id, receiver.url)
        register(ls_client.sdk, pushed.project_id, receiver.url)  # registering again replaces, never doubles
        hooks = [h for h in ls_client.sdk.webhooks.list(project=pushed.project_id) if h.url == receiver.url]
        assert len(hooks) == 1
        task = project_tasks(ls_client, project_title)[0]
        assert not receiver.event.is_set()
        ls_client.sdk.annotations.create(
            id=task["id"], result=[{"from_name": "feedback", "to_name": "output", "type": "textarea", "value": {"text": ["add ben"]}}]
        )
        assert receiver.event.wait(20), "the server did not call the webhook"
        assert receiver.received.get("ANNOTATION_CREATED", 0) >= 1


def test_ideal_tasks_carry_the_output_as_a_prediction_the_annotator_edits(ls_client, project_title) -> None:
    samples = [Sample(id="p0", inputs={"post": "a post"})]
    outputs = [Output(sample_id="p0", text="the model's summary", system="policy")]
    push(ls_client, project_title, "ideal", build_tasks("ideal", samples, outputs, model_version="demo round-2"))
    (task,) = project_tasks(ls_client, project_title)
    (prediction,) = ls_client.sdk.predictions.list(task=task["id"])
    assert prediction.model_version == "demo round-2"
    assert prediction.result[0]["value"]["text"] == ["the model's summary"]
    assert prediction.result[0]["from_name"] == "ideal"


def test_a_push_refuses_a_project_holding_other_outputs_for_its_keys(ls_client, project_title) -> None:
    from ilf.labelstudio.client import LabelStudioError

    samples = [Sample(id=f"o{i}", inputs={"post": f"post {i}"}) for i in range(2)]
    earlier = [Output(sample_id=s.id, text=f"an earlier summary {i}", system="policy") for i, s in enumerate(samples)]
    push(ls_client, project_title, "feedback", build_tasks("feedback", samples, earlier))
    again = push(ls_client, project_title, "feedback", build_tasks("feedback", samples, earlier, model_version="v2"))
    assert (again.imported, again.already_present) == (0, 2)  # the same outputs: nothing to do
    now = [Output(sample_id=s.id, text=f"this round's summary {i}", system="policy") for i, s in enumerate(samples)]
    with pytest.raises(LabelStudioError, match=r"already has tasks for 2 of these keys with other content \(first: 'o0'\)"):
        push(ls_client, project_title, "feedback", build_tasks("feedback", samples, now))
    assert len(project_tasks(ls_client, project_title)) == 2  # nothing was imported
