"""The per-round summary page of `ilf loop`: annotators, skips, lead times, agreement, metrics;
two annotator accounts of their own working the same project on a real server."""

from __future__ import annotations

import json

import pytest

from ilf.feedback.labelstudio_round import EXPORT, write_round_summary
from ilf.labelstudio.annotator import AnnotatorStats, annotate_project, annotator_account
from ilf.labelstudio.client import Connection
from ilf.labelstudio.summary import SUMMARY_JSON, SUMMARY_MD, cohens_kappa, summarize
from ilf.labelstudio.sync import NONE_OF_THEM, build_tasks, push
from ilf.records import Candidate, Output, Refinements, Sample

SAMPLES = [Sample(id=f"q{i}", inputs={"post": f"Post {i}."}) for i in range(4)]
OUTPUTS = [Output(sample_id=s.id, text=f"Summary of post {i}.", system="policy") for i, s in enumerate(SAMPLES)]


def test_cohens_kappa() -> None:
    assert cohens_kappa([]) is None
    assert cohens_kappa([("a", "a"), ("b", "b")]) == 1.0
    assert cohens_kappa([("a", "a"), ("a", "a")]) == 1.0  # one label only, always agreed
    assert cohens_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    # observed 2/3, expected (1*1 + 2*1) / 9 = 1/3: kappa (2/3 - 1/3) / (2/3)
    assert cohens_kappa([("c2", "c2"), ("c1", "c1"), ("c1", "none")]) == pytest.approx(0.5)


def test_round_summary_with_two_annotator_accounts_on_one_project(label_studio, ls_client, project_title, tmp_path) -> None:
    pushed = push(ls_client, project_title, "feedback", build_tasks("feedback", SAMPLES, OUTPUTS, model_version="demo round-1"))
    ls_client.sdk.projects.update(id=pushed.project_id, maximum_annotations=2)  # two people may take each task
    admin = Connection(label_studio["url"], label_studio["creds"].token)
    first = annotator_account(admin, label_studio["data_dir"], email=f"first-{project_title[-6:]}@ilf.local")
    second = annotator_account(admin, label_studio["data_dir"], email=f"second-{project_title[-6:]}@ilf.local")
    one = annotate_project(label_studio["url"], first.token, pushed.project_id, lambda data: f"Name the post: {data['output']}")
    # the second person skips the first task they get and critiques the rest (a seeded random share
    # would depend on the project's id, which depends on how many projects the server holds)
    skips = annotate_project(label_studio["url"], second.token, pushed.project_id, lambda data: "Shorter.", skip_share=1.0, limit=1)
    rest = annotate_project(label_studio["url"], second.token, pushed.project_id, lambda data: "Shorter.")
    two = AnnotatorStats(annotated=skips.annotated + rest.annotated, skipped=skips.skipped + rest.skipped)
    assert (one.annotated, one.skipped) == (4, 0) and two.annotated + two.skipped == 4 and two.skipped == 1

    # what the feedback stage leaves in the round's directory, and the round's metrics
    round_dir = tmp_path / "round-1"
    round_dir.mkdir()
    tasks = ls_client.export_tasks(pushed.project_id)
    emails = {str(k): v for k, v in ls_client.user_emails().items()}
    (round_dir / EXPORT).write_text(json.dumps({"project": project_title, "template": "feedback", "tasks": tasks, "emails": emails}))
    metrics = {"primary": "ilf", "systems": {"ilf": {"facts_recall": 0.25, "facts_recall_sem": 0.05, "n": 20}}}
    (round_dir / "metrics.json").write_text(json.dumps(metrics))

    page = write_round_summary(round_dir, 1)
    assert page == round_dir / SUMMARY_MD
    summary = json.loads((round_dir / SUMMARY_JSON).read_text())
    assert (summary["project"], summary["round"], summary["template"], summary["tasks"]) == (project_title, 1, "feedback", 4)
    assert summary["annotators"][first.email]["annotated"] == 4 and summary["annotators"][first.email]["skipped"] == 0
    second_row = summary["annotators"][second.email]
    assert (second_row["annotated"], second_row["skipped"]) == (two.annotated, two.skipped)
    assert second_row["median_lead_time"] > 0  # the annotator's lead times, sent with each annotation
    assert (summary["annotations"], summary["skipped"]) == (4 + two.annotated, two.skipped)
    assert summary["median_lead_time"] > 0 and summary["annotators"][first.email]["median_lead_time"] > 0
    assert summary["agreement"] == {"tasks_with_two_or_more_annotators": two.annotated}
    assert summary["metrics"] == {"facts_recall": 0.25, "n": 20} and summary["system"] == "ilf"
    text = page.read_text()
    assert f"| {first.email} | 4 | 0 |" in text and "Tasks annotated by two or more people" in text and "| facts_recall | 0.250 |" in text
    assert write_round_summary(tmp_path) is None  # a directory without an export has no page


def test_select_agreement_identical_picks_and_kappa(ls_client, project_title) -> None:
    refinements = [
        Refinements(sample_id=s.id, candidates=[Candidate(text=f"r{c} {s.id}") for c in range(3)], feedback="f") for s in SAMPLES[:3]
    ]
    pushed = push(ls_client, project_title, "select", build_tasks("select", SAMPLES, refinements=refinements))
    other = ls_client.sdk.users.create(username=f"kappa-{project_title[-6:]}", email=f"kappa-{project_title[-6:]}@ilf.local")
    tasks = {t["data"]["sample_id"]: t for t in ls_client.export_tasks(pushed.project_id)}

    def pick(choice: str) -> list[dict]:
        return [{"from_name": "pick", "to_name": "input", "type": "choices", "value": {"choices": [choice]}}]

    for sample_id, (mine, theirs) in {
        "q0": ("Candidate 2", "Candidate 2"),
        "q1": ("Candidate 1", "Candidate 1"),
        "q2": ("Candidate 1", NONE_OF_THEM),
    }.items():
        ls_client.sdk.annotations.create(id=tasks[sample_id]["id"], result=pick(mine), lead_time=3.0)
        ls_client.sdk.annotations.create(id=tasks[sample_id]["id"], result=pick(theirs), completed_by=other.id, lead_time=5.0)
    summary = summarize(ls_client.export_tasks(pushed.project_id), "select", ls_client.user_emails())
    assert summary["agreement"]["tasks_with_two_or_more_annotators"] == 3
    assert summary["agreement"]["pairs"] == 3
    assert summary["agreement"]["identical_picks"] == pytest.approx(2 / 3)
    assert summary["agreement"]["cohens_kappa"] == pytest.approx(0.5)
    assert summary["annotators"][other.email] == {"annotated": 3, "skipped": 0, "median_lead_time": 5.0}
    assert summary["median_lead_time"] == 4.0
