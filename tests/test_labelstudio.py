"""Label Studio end to end against a real server on loopback (see the `label_studio` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, slf5k_row, small_run_overrides, write_jsonl
from flaky_proxy import FlakyProxy

from ilf.cli import main
from ilf.labelstudio.client import Connection, LabelStudio, LabelStudioError
from ilf.labelstudio.sync import build_tasks, pull, push, ranking_win_rates
from ilf.records import Comparison, Feedback, Output, Refinements, Sample, read_records, write_records

SAMPLES = [
    Sample(
        id=f"s{i}",
        inputs={"title": f"Title {i}", "post": f"Post number {i}."},
        initial_output=f"Summary {i}.",
        references=[f"Reference {i}."],
    )
    for i in range(4)
]


def textarea(name: str, to: str, text: str) -> dict:
    return {"from_name": name, "to_name": to, "type": "textarea", "value": {"text": [text]}}


def annotate(client: LabelStudio, task_id: int, result: list[dict], **kwargs) -> int:
    return client.sdk.annotations.create(id=task_id, result=result, **kwargs).id


def tasks_by_key(client: LabelStudio, title: str) -> dict[str, dict]:
    project = client.find_project(title)
    return {t["data"]["ilf_key"]: t for t in client.export_tasks(project.id)}


def conn_args(label_studio) -> list[str]:
    """How a user points a command at the local server: its URL and its data directory (for the key)."""
    return ["--url", label_studio["url"], "--data-dir", str(label_studio["data_dir"])]


def cli_env(label_studio) -> dict[str, str]:
    return {**os.environ, "LABEL_STUDIO_URL": label_studio["url"], "LABEL_STUDIO_API_KEY": label_studio["creds"].token}


def test_feedback_round_trip_with_rating_class_two_annotators_cancelled_and_empty(ls_client, project_title, tmp_path) -> None:
    result = push(ls_client, project_title, "feedback", build_tasks("feedback", SAMPLES))
    assert (result.created_project, result.imported) == (True, 4)
    tasks = tasks_by_key(ls_client, project_title)
    assert tasks["s0"]["data"]["output"] == "Summary 0." and tasks["s0"]["data"]["input_text"] == "Title: Title 0\n\nPost: Post number 0."
    critique = "It leaves out the question — say that she asks whether to move out."
    annotate(
        ls_client,
        tasks["s0"]["id"],
        [
            textarea("feedback", "output", critique),
            {"from_name": "rating", "to_name": "output", "type": "rating", "value": {"rating": 2}},
            {"from_name": "feedback_class", "to_name": "output", "type": "choices", "value": {"choices": ["coverage"]}},
        ],
        lead_time=41.5,
    )
    second = ls_client.sdk.users.create(username=f"ann-{project_title[-6:]}", email=f"ann-{project_title[-6:]}@ilf.local")
    annotate(ls_client, tasks["s0"]["id"], [textarea("feedback", "output", "Too short.")], completed_by=second.id)
    annotate(ls_client, tasks["s1"]["id"], [], was_cancelled=True)  # skipped in the UI
    annotate(ls_client, tasks["s2"]["id"], [textarea("feedback", "output", "   ")])  # nothing written

    out = tmp_path / "feedback.jsonl"
    pulled = pull(ls_client, project_title, out)
    assert (pulled.counts.new, pulled.counts.cancelled, pulled.counts.empty, pulled.counts.annotations) == (2, 1, 1, 4)
    records = read_records(out, Feedback)
    assert [(r.sample_id, r.text, r.annotator, r.rating, r.feedback_class, r.lead_time, r.output) for r in records] == [
        ("s0", critique, "admin@ilf.local", 2.0, "coverage", 41.5, "Summary 0."),
        ("s0", "Too short.", second.email, None, None, None, "Summary 0."),
    ]
    assert all(r.source == f"labelstudio:{project_title}" and r.extra["ls_annotation_id"] for r in records)


def test_ideal_pairwise_and_ranking_round_trips(ls_client, project_title, tmp_path) -> None:
    outputs = [
        Output(sample_id=s.id, text=f"{system} says {s.id}.", system=system) for s in SAMPLES[:2] for system in ("base", "ilf", "reference")
    ]

    push(ls_client, project_title + "-ideal", "ideal", build_tasks("ideal", SAMPLES[:2]))
    task = tasks_by_key(ls_client, project_title + "-ideal")["s1"]
    annotate(ls_client, task["id"], [textarea("ideal", "input", "The ideal summary of post 1.")])
    pull(ls_client, project_title + "-ideal", tmp_path / "ideal.jsonl")
    (ideal,) = read_records(tmp_path / "ideal.jsonl", Output)
    assert (ideal.sample_id, ideal.text, ideal.system) == ("s1", "The ideal summary of post 1.", "human_ideal")

    push(ls_client, project_title + "-pair", "pairwise", build_tasks("pairwise", SAMPLES[:2], outputs, ["base", "ilf"]))
    pair_tasks = list(tasks_by_key(ls_client, project_title + "-pair").values())
    data = pair_tasks[0]["data"]
    annotate(
        ls_client,
        pair_tasks[0]["id"],
        [{"from_name": "comparison", "to_name": "output_a,output_b", "type": "pairwise", "value": {"selected": "right"}}],
        lead_time=21.5,
    )
    pull(ls_client, project_title + "-pair", tmp_path / "pairs.jsonl")
    (comparison,) = read_records(tmp_path / "pairs.jsonl", Comparison)
    assert (comparison.chosen, comparison.rejected, comparison.preferred) == (data["output_b"], data["output_a"], "b")
    assert {comparison.a_system, comparison.b_system} == {"base", "ilf"}
    assert comparison.extra["lead_time"] == 21.5  # what it cost the person, which prices it (ilf.costs)

    push(ls_client, project_title + "-rank", "ranking", build_tasks("ranking", SAMPLES[:2], outputs))
    rank_tasks = tasks_by_key(ls_client, project_title + "-rank")
    by_system = {systems[0]: item for item, systems in rank_tasks["s0"]["data"]["systems"].items()}
    order = [by_system["ilf"], by_system["reference"], by_system["base"]]
    annotate(
        ls_client,
        rank_tasks["s0"]["id"],
        [{"from_name": "rank", "to_name": "candidates", "type": "ranker", "value": {"ranker": {"rank": order}}}],
        lead_time=30.0,
    )
    result = pull(ls_client, project_title + "-rank", tmp_path / "ranked.jsonl")
    pairs = read_records(tmp_path / "ranked.jsonl", Comparison)
    # one ranking of three, priced once by its lead time however many pairs it gives
    assert len({p.extra["ranking"] for p in pairs}) == 1 and {(p.extra["ranked"], p.extra["lead_time"]) for p in pairs} == {(3, 30.0)}
    assert [(p.a_system, p.b_system, p.preferred) for p in pairs] == [
        ("ilf", "reference", "a"),
        ("ilf", "base", "a"),
        ("reference", "base", "a"),
    ]
    assert pairs[0].chosen == "ilf says s0."
    table = ranking_win_rates(result.tasks, reference="reference")
    assert table["ilf"]["win_rate"] == 1.0 and table["base"]["win_rate"] == 0.0 and table["ilf"]["n"] == 1


def test_human_evaluation_win_rates_with_ties_and_standard_errors(label_studio, ls_client, project_title, tmp_path, capsys) -> None:
    outputs = []
    for s in SAMPLES[:2]:
        outputs += [
            Output(sample_id=s.id, text=f"base {s.id}.", system="base"),
            Output(sample_id=s.id, text=f"ilf {s.id}.", system="ilf"),
            Output(sample_id=s.id, text=f"same text {s.id}." if s.id == "s1" else f"ref {s.id}.", system="reference"),
        ]
    # On s1 the fine-tuned model wrote exactly the reference: one item, a tie.
    outputs = [o if not (o.sample_id == "s1" and o.system == "ilf") else Output("s1", "same text s1.", "ilf") for o in outputs]
    write_records(tmp_path / "eval_outputs.jsonl", outputs)
    write_records(tmp_path / "eval_samples.jsonl", SAMPLES[:2])
    assert (
        main(
            [
                "labelstudio",
                "push",
                str(tmp_path / "eval_samples.jsonl"),
                "--outputs",
                str(tmp_path / "eval_outputs.jsonl"),
                "--project",
                project_title,
                "--template",
                "ranking",
                *conn_args(label_studio),
            ]
        )
        == 0
    )
    tasks = tasks_by_key(ls_client, project_title)
    assert len(tasks["s1"]["data"]["candidates"]) == 2
    for key, ranking in (("s0", ["reference", "ilf", "base"]), ("s1", ["reference", "base"])):
        items = {system: item for item, systems in tasks[key]["data"]["systems"].items() for system in systems}
        order = list(dict.fromkeys(items[s] for s in ranking))
        annotate(
            ls_client,
            tasks[key]["id"],
            [{"from_name": "rank", "to_name": "candidates", "type": "ranker", "value": {"ranker": {"rank": order}}}],
        )
    capsys.readouterr()
    assert (
        main(
            [
                "labelstudio",
                "pull",
                "--project",
                project_title,
                "--out",
                str(tmp_path / "human.jsonl"),
                "--reference",
                "reference",
                "--table",
                str(tmp_path / "human_eval.json"),
                *conn_args(label_studio),
            ]
        )
        == 0
    )
    table = json.loads((tmp_path / "human_eval.json").read_text())["systems"]
    # vs reference: ilf lost on s0 and tied on s1 -> (0 + 0.5) / 2; base lost both.
    assert table["ilf"]["win_rate"] == pytest.approx(0.25) and table["ilf"]["win_rate_sem"] == pytest.approx(0.25)
    assert table["base"]["win_rate"] == 0.0 and table["base"]["n"] == 2
    printed = capsys.readouterr().out
    assert "| system | win_rate |" in printed and "| ilf | 0.250 ± 0.250 |" in printed


def test_push_is_idempotent_and_pull_is_incremental(ls_client, project_title, tmp_path, label_studio) -> None:
    write_records(tmp_path / "samples.jsonl", SAMPLES[:3])
    args = ["labelstudio", "push", str(tmp_path / "samples.jsonl"), "--project", project_title, "--template", "feedback"]
    env_url = conn_args(label_studio)
    assert main(args + env_url) == 0
    assert main(args + env_url) == 0
    write_records(tmp_path / "samples.jsonl", SAMPLES)  # one more sample arrives
    assert main(args + env_url) == 0
    tasks = tasks_by_key(ls_client, project_title)
    assert sorted(tasks) == ["s0", "s1", "s2", "s3"]  # no duplicates

    annotate(ls_client, tasks["s0"]["id"], [textarea("feedback", "output", "first")])
    out = tmp_path / "pulled.jsonl"
    pull(ls_client, project_title, out)
    first = out.read_text()
    annotate(ls_client, tasks["s3"]["id"], [textarea("feedback", "output", "second")])
    again = pull(ls_client, project_title, out)
    assert (again.counts.new, again.counts.kept) == (1, 1)
    assert out.read_text().startswith(first)  # earlier records untouched, new ones appended
    assert [r.text for r in read_records(out, Feedback)] == ["first", "second"]
    assert pull(ls_client, project_title, out).counts.new == 0


def test_server_down_mid_pull_and_transient_errors(ls_client, project_title, tmp_path) -> None:
    push(ls_client, project_title, "feedback", build_tasks("feedback", SAMPLES[:2]))
    task = tasks_by_key(ls_client, project_title)["s0"]
    annotate(ls_client, task["id"], [textarea("feedback", "output", "kept safe")])
    out = tmp_path / "feedback.jsonl"
    pull(ls_client, project_title, out)
    before = out.read_bytes()
    annotate(ls_client, tasks_by_key(ls_client, project_title)["s1"]["id"], [textarea("feedback", "output", "new one")])

    with FlakyProxy(ls_client.url) as proxy:
        proxy.unavailable_first = 2  # two 503s, then the real server answers
        flaky = LabelStudio(Connection(proxy.url, ls_client.connection.api_key), retries=3, backoff=0.05)
        assert flaky.find_project(project_title) is not None and proxy.requests > 2

        proxy.requests, proxy.unavailable_first = 0, 0
        flaky.find_project(project_title)
        lookup_requests, proxy.requests = proxy.requests, 0
        proxy.fail_after = lookup_requests  # the project lookup succeeds, then the server vanishes
        with pytest.raises(LabelStudioError, match=rf"cannot reach Label Studio at {proxy.url} to export project"):
            pull(flaky, project_title, out)
    assert out.read_bytes() == before  # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_token_unreachable_server_and_rejected_template(label_studio, tmp_path, capsys) -> None:
    write_records(tmp_path / "samples.jsonl", SAMPLES[:1])
    wrong = "f" * 40
    env = {**cli_env(label_studio), "LABEL_STUDIO_API_KEY": wrong}
    result = subprocess.run(
        [sys.executable, "-m", "ilf", "labelstudio", "push", str(tmp_path / "samples.jsonl"), "--project", "x", "--template", "feedback"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"ilf: error: {label_studio['url']}: the API key was refused (HTTP 401) while trying to list projects"
    assert wrong not in result.stdout + result.stderr

    env["LABEL_STUDIO_URL"] = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "ilf", "labelstudio", "pull", "--project", "x", "--out", str(tmp_path / "o.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "cannot reach Label Studio at http://127.0.0.1:9" in result.stderr
    assert result.stderr.count("\n") <= 5  # retry warnings and one error line, no traceback
    assert "Traceback" not in result.stderr

    client = LabelStudio(Connection(label_studio["url"], label_studio["creds"].token))
    with pytest.raises(LabelStudioError, match=r"could not create project 'bad': HTTP 400: .*Choice"):
        client._call(
            "create project 'bad'",
            lambda: client.sdk.projects.create(
                title="bad", label_config="<View><Text name='t' value='$t'/><Choices name='c' toName='t'/></View>"
            ),
        )


def test_personal_access_token_refresh_flow(ls_client, project_title) -> None:
    existing = list(ls_client.sdk.tokens.list())
    for token in existing:
        ls_client.sdk.tokens.blacklist(refresh=token.token)
    personal = ls_client.sdk.tokens.create().token
    assert personal.count(".") == 2  # a JWT refresh token, not a legacy key
    client = LabelStudio(Connection(ls_client.url, personal))
    assert client.check() == "admin@ilf.local"
    assert push(client, project_title, "feedback", build_tasks("feedback", SAMPLES[:1])).imported == 1
    with pytest.raises(LabelStudioError, match="the API key was refused"):
        LabelStudio(Connection(ls_client.url, personal[:-4] + "AAAA")).check()


def test_api_key_stays_out_of_output_help_and_run_dirs(label_studio, tmp_path) -> None:
    token = label_studio["creds"].token
    assert token[:4] in label_studio["serve_output"] and token not in label_studio["serve_output"]
    for command in (["labelstudio", "--help"], ["labelstudio", "push", "--help"], ["labelstudio", "pull", "--help"], ["run", "--help"]):
        shown = subprocess.run([sys.executable, "-m", "ilf", *command], env=cli_env(label_studio), capture_output=True, text=True)
        assert token not in shown.stdout + shown.stderr
    credentials = Path(label_studio["data_dir"]) / "credentials.json"
    assert credentials.stat().st_mode & 0o077 == 0  # readable by the user only
    assert "api_key=<hidden>" in repr(Connection(label_studio["url"], token))


@pytest.mark.slow
def test_run_stops_after_outputs_then_continues_from_pulled_feedback(label_studio, ls_client, project_title, tmp_path) -> None:
    data = write_jsonl(tmp_path / "data" / "train.jsonl", [slf5k_row(i) for i in range(6)])
    write_jsonl(tmp_path / "data" / "test.jsonl", [slf5k_row(i, "test") for i in range(2)])
    run_dir = tmp_path / "run"
    config = str(REPO / "experiments" / "offline.yaml")
    sets = [a for o in small_run_overrides(data.parent, limit=6, eval_limit=2) for a in ("--set", o)]
    assert main(["run", config, "--run-dir", str(run_dir), *sets, "--until", "outputs"]) == 0
    assert (
        main(
            [
                "labelstudio",
                "push",
                str(run_dir / "samples.jsonl"),
                "--outputs",
                str(run_dir / "outputs.jsonl"),
                "--project",
                project_title,
                "--template",
                "feedback",
                *conn_args(label_studio),
            ]
        )
        == 0
    )
    tasks = tasks_by_key(ls_client, project_title)
    assert sorted(tasks) == [f"train-{i:04d}" for i in range(6)]
    for key in ("train-0001", "train-0004"):
        annotate(ls_client, tasks[key]["id"], [textarea("feedback", "output", f"Critique of {key}: name the problem.")])

    ls_sets = sets + [
        "--set",
        "feedback.source=labelstudio",
        "--set",
        f"feedback_options.labelstudio.project={project_title}",
        "--set",
        f"labelstudio.url={label_studio['url']}",
        "--set",
        f"labelstudio.data_dir={label_studio['data_dir']}",
    ]
    assert main(["run", config, "--run-dir", str(run_dir), *ls_sets]) == 0
    feedback = read_records(run_dir / "feedback.jsonl", Feedback)
    assert [(f.sample_id, f.text) for f in feedback] == [
        ("train-0001", "Critique of train-0001: name the problem."),
        ("train-0004", "Critique of train-0004: name the problem."),
    ]
    outputs = {o.sample_id: o.text for o in read_records(run_dir / "outputs.jsonl", Output)}
    assert all(f.output == outputs[f.sample_id] for f in feedback)  # the critique is about the pushed output
    assert [r.sample_id for r in read_records(run_dir / "refinements.jsonl", Refinements)] == ["train-0001", "train-0004"]
    markers = {s: json.loads((run_dir / ".ilf/stages" / f"{s}.json").read_text())["finished"] for s in ("feedback", "refine")}

    assert main(["run", config, "--run-dir", str(run_dir), *ls_sets]) == 0  # nothing new: nothing recomputed
    assert {s: json.loads((run_dir / ".ilf/stages" / f"{s}.json").read_text())["finished"] for s in markers} == markers

    annotate(ls_client, tasks["train-0002"]["id"], [textarea("feedback", "output", "A third critique.")])
    assert main(["run", config, "--run-dir", str(run_dir), *ls_sets]) == 0
    assert [f.sample_id for f in read_records(run_dir / "feedback.jsonl", Feedback)] == ["train-0001", "train-0004", "train-0002"]
