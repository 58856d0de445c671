"""The select template and the labelstudio selector against a real server on loopback, and the
limit on pushing into a project that already holds very many tasks."""

from __future__ import annotations

import pytest

from ilf.config import load_config
from ilf.labelstudio.client import LabelStudioError
from ilf.labelstudio.sync import NONE_OF_THEM, build_tasks, pull, push
from ilf.records import Candidate, Feedback, Refinements, Sample, Selection, read_records
from ilf.steps import select_refinements

SAMPLES = [
    Sample(
        id=f"s{i}", inputs={"title": f"Title {i}", "post": f"Post number {i} <b>with</b> markup & more."}, initial_output=f"Summary {i}."
    )
    for i in range(4)
]
CANDIDATES = {s.id: [f"Refinement {c} of {s.id} <i>&</i>." for c in range(1, 4)] for s in SAMPLES}
REFINEMENTS = [
    Refinements(sample_id=s.id, candidates=[Candidate(text=t) for t in CANDIDATES[s.id]], output=s.initial_output, feedback=None)
    for s in SAMPLES
]
FEEDBACK = [Feedback(sample_id=s.id, text=f"Mention post {s.id}.", output=s.initial_output) for s in SAMPLES]


def pick(choice: str) -> dict:
    return {"from_name": "pick", "to_name": "input", "type": "choices", "value": {"choices": [choice]}}


def edited(text: str) -> dict:
    return {"from_name": "edited", "to_name": "input", "type": "textarea", "value": {"text": [text]}}


def annotated_select_project(ls_client, title: str) -> dict[str, dict]:
    """s0: candidate 2 picked; s1: candidate 1 picked and edited; s2: none of them; s3: nobody."""
    tasks = build_tasks("select", SAMPLES, feedback=FEEDBACK, refinements=REFINEMENTS)
    result = push(ls_client, title, "select", tasks)
    assert (result.created_project, result.imported) == (True, 4)
    by_key = {t["data"]["ilf_key"]: t for t in ls_client.export_tasks(result.project_id)}
    create = ls_client.sdk.annotations.create
    create(id=by_key["s0"]["id"], result=[pick("Candidate 2")], lead_time=12.0)
    create(id=by_key["s1"]["id"], result=[pick("Candidate 1"), edited("Refinement 1 of s1, fixed by hand.")])
    create(id=by_key["s2"]["id"], result=[pick(NONE_OF_THEM)])
    return by_key


def test_select_tasks_show_input_output_feedback_and_candidates_side_by_side() -> None:
    (task,) = build_tasks("select", SAMPLES[:1], feedback=FEEDBACK, refinements=REFINEMENTS[:1])
    data = task["data"]
    assert (data["ilf_key"], data["output"], data["feedback"]) == ("s0", "Summary 0.", "Mention post s0.")
    assert data["candidates"] == CANDIDATES["s0"]
    assert [c["value"] for c in data["choices"]] == ["Candidate 1", "Candidate 2", "Candidate 3", NONE_OF_THEM]
    assert "display:flex" in data["candidates_html"] and "&lt;i&gt;&amp;&lt;/i&gt;" in data["candidates_html"]
    assert "<i>" not in data["candidates_html"]  # candidates are text, never markup
    # two critiques of one sample: two tasks with distinct keys
    twice = build_tasks("select", SAMPLES[:1], refinements=[REFINEMENTS[0], REFINEMENTS[0]])
    assert [t["data"]["ilf_key"] for t in twice] == ["s0::0", "s0::1"]
    with pytest.raises(ValueError, match="not among the samples"):
        build_tasks("select", SAMPLES[1:2], refinements=REFINEMENTS[:1])


def test_select_round_trip_pick_edit_and_none(ls_client, project_title, tmp_path) -> None:
    annotated_select_project(ls_client, project_title)
    out = tmp_path / "selected.jsonl"
    result = pull(ls_client, project_title, out)
    assert result.template == "select"
    assert (result.counts.annotations, result.counts.new, result.counts.none, result.counts.empty) == (3, 2, 1, 0)
    records = {r.sample_id: r for r in read_records(out, Selection)}
    assert set(records) == {"s0", "s1"}  # "none of them" selects nothing
    assert (records["s0"].index, records["s0"].text, records["s0"].extra["edited"]) == (1, CANDIDATES["s0"][1], False)
    assert (records["s1"].index, records["s1"].text, records["s1"].extra["edited"]) == (0, "Refinement 1 of s1, fixed by hand.", True)
    assert records["s0"].selector == "human" and records["s0"].feedback == "Mention post s0."
    assert [c.text for c in records["s0"].candidates] == CANDIDATES["s0"]
    assert records["s0"].extra["annotator"] == "admin@ilf.local" and records["s0"].extra["lead_time"] == 12.0
    assert pull(ls_client, project_title, out).counts.new == 0  # incremental, as every template


def test_labelstudio_selector_mixes_human_and_automatic_picks(label_studio, ls_client, project_title, monkeypatch) -> None:
    annotated_select_project(ls_client, project_title)
    # a second person on s0 picks candidate 3: one vote each, the earlier answer wins the tie
    second = ls_client.sdk.users.create(username=f"sel-{project_title[-6:]}", email=f"sel-{project_title[-6:]}@ilf.local")
    s0 = next(t for t in ls_client.export_tasks(ls_client.find_project(project_title).id) if t["data"]["ilf_key"] == "s0")
    ls_client.sdk.annotations.create(id=s0["id"], result=[pick("Candidate 3")], completed_by=second.id)
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio["url"])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio["creds"].token)

    config = load_config(
        None,
        [
            "selection.method=labelstudio",
            "selection.also_score=[random]",
            f"selection_options.labelstudio.project={project_title}",
            "selection_options.random.seed=3",
        ],
    )
    selections, stats = select_refinements(SAMPLES, REFINEMENTS, config)
    by_id = {s.sample_id: s for s in selections}
    assert set(by_id) == {"s0", "s1", "s3"}  # s2: "none of them" leaves it out of fine-tuning
    assert (stats["picked_by_human"], stats["picked_automatically"], stats["human_edited"], stats["no_acceptable_candidate"]) == (
        2,
        1,
        1,
        1,
    )
    assert (by_id["s0"].index, by_id["s0"].text, by_id["s0"].extra["picked_by"]) == (1, CANDIDATES["s0"][1], "human")
    assert (by_id["s1"].index, by_id["s1"].text, by_id["s1"].extra["edited"]) == (0, "Refinement 1 of s1, fixed by hand.", True)
    assert by_id["s1"].selector == "labelstudio" and by_id["s1"].extra["annotator"] == "admin@ilf.local"
    # s3 went to the automatic selector: its pick is the random selector's, recorded as such
    assert by_id["s3"].extra == {"picked_by": "automatic", "automatic_selector": "random"}
    assert by_id["s3"].text == CANDIDATES["s3"][by_id["s3"].index]
    random_scores = [c.scores["random"] for c in by_id["s3"].candidates]
    assert by_id["s3"].index == random_scores.index(max(random_scores))
    # what the people's picks cost: s0's pick by the lead time the server recorded, s1's edit at cost.edit; the automatic pick nothing
    from ilf.selection.labelstudio import LabelStudioSelector

    asked = {a.sample_id: a for a in LabelStudioSelector.feedback_asked([], selections, config.cost)}
    assert set(asked) == {"s0", "s1"} and (asked["s0"].kind, asked["s0"].seconds, asked["s0"].measured) == ("picks", 12.0, True)
    assert (asked["s1"].kind, asked["s1"].seconds, asked["s1"].measured) == ("edits", 120.0, False)  # no lead time sent: the price


def test_a_pick_holds_only_for_the_candidate_the_person_saw_and_a_run_scores_its_snapshot(
    label_studio, ls_client, project_title, monkeypatch, tmp_path
) -> None:
    from types import SimpleNamespace

    from ilf.layout import RunPaths
    from ilf.selection.labelstudio import PICKS_FILE, snapshot_picks

    by_key = annotated_select_project(ls_client, project_title)  # s0: candidate 2; s1: candidate 1, edited; s2: none; s3: nobody
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio["url"])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio["creds"].token)
    sets = ["selection.method=labelstudio", "selection.also_score=[random]", f"selection_options.labelstudio.project={project_title}"]
    config = load_config(None, sets)

    # the refinements written again since people picked: s0's second candidate is another text now
    rewritten = [
        Refinements(sample_id=r.sample_id, candidates=[Candidate(text=f"{c.text} Again.") for c in r.candidates], output=r.output)
        if r.sample_id == "s0"
        else r
        for r in REFINEMENTS
    ]
    selections, stats = select_refinements(SAMPLES, rewritten, config)
    by_id = {s.sample_id: s for s in selections}
    assert by_id["s0"].extra == {"picked_by": "automatic", "automatic_selector": "random", "pick_of_changed_candidate": True}
    assert by_id["s1"].extra["picked_by"] == "human"  # its edit is the person's text; the candidate they edited is unchanged
    assert (stats["picked_by_human"], stats["human_picks_of_changed_candidates"]) == (1, 1)

    # in a run, the picks fetched before its stages are what the select stage scores
    run = SimpleNamespace(paths=RunPaths(tmp_path))
    assert snapshot_picks(project_title, tmp_path / PICKS_FILE)
    ls_client.sdk.annotations.create(id=by_key["s3"]["id"], result=[pick("Candidate 3")])  # after the snapshot
    in_run = {s.sample_id: s for s in select_refinements(SAMPLES, REFINEMENTS, config, run=run)[0]}
    assert (in_run["s0"].index, in_run["s0"].extra["picked_by"]) == (1, "human")
    assert in_run["s1"].text == "Refinement 1 of s1, fixed by hand." and in_run["s1"].extra["annotator"] == "admin@ilf.local"
    assert in_run["s3"].extra["picked_by"] == "automatic"  # the snapshot has no pick for it
    live = {s.sample_id: s for s in select_refinements(SAMPLES, REFINEMENTS, config)[0]}
    assert (live["s3"].index, live["s3"].extra["picked_by"]) == (2, "human")  # the project as it is now has one


def test_labelstudio_selector_needs_a_project() -> None:
    with pytest.raises(LabelStudioError, match="selection_options.labelstudio.project"):
        select_refinements(SAMPLES, REFINEMENTS, load_config(None, ["selection.method=labelstudio"]))


def test_push_into_a_project_holding_too_many_tasks_fails_with_a_clear_message(ls_client, project_title) -> None:
    tasks = build_tasks("feedback", SAMPLES)
    first = push(ls_client, project_title, "feedback", tasks[:3], batch_size=2)  # two import requests
    assert first.imported == 3 and len(ls_client.export_tasks(first.project_id)) == 3
    assert push(ls_client, project_title, "feedback", tasks, max_project_tasks=3).imported == 1  # at the limit: fine
    with pytest.raises(LabelStudioError) as raised:
        push(ls_client, project_title, "feedback", tasks, max_project_tasks=3)
    message = str(raised.value)
    assert f"project {project_title!r}" in message and "already holds 4 tasks" in message and "project per round" in message
    assert push(ls_client, project_title, "feedback", tasks, max_project_tasks=None).already_present == 4


def test_cli_pushes_select_tasks_from_a_refinements_file_and_reports_a_full_project(label_studio, project_title, tmp_path) -> None:
    import os
    import subprocess
    import sys

    from ilf.records import write_records

    write_records(tmp_path / "samples.jsonl", SAMPLES)
    write_records(tmp_path / "refinements.jsonl", REFINEMENTS)
    env = {**os.environ, "LABEL_STUDIO_URL": label_studio["url"], "LABEL_STUDIO_API_KEY": label_studio["creds"].token}
    push_args = [sys.executable, "-m", "ilf", "labelstudio", "push", str(tmp_path / "samples.jsonl"), "--project", project_title]
    done = subprocess.run(
        [*push_args, "--template", "select", "--refinements", str(tmp_path / "refinements.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 4 tasks, 0 already there" in done.stdout
    full = subprocess.run(
        [*push_args, "--template", "select", "--refinements", str(tmp_path / "refinements.jsonl"), "--max-project-tasks", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert full.returncode == 2
    (line,) = full.stderr.strip().splitlines()  # one line, no traceback
    assert f"project {project_title!r}" in line and "already holds 4 tasks, more than the 2" in line


@pytest.mark.slow
def test_a_small_run_selects_with_peoples_picks_and_an_automatic_selector(
    label_studio, ls_client, project_title, tmp_path, monkeypatch
) -> None:
    import json

    from conftest import REPO, slf5k_row, small_run_overrides, write_jsonl

    from ilf.cli import main

    data = write_jsonl(tmp_path / "data" / "train.jsonl", [slf5k_row(i) for i in range(4)])
    write_jsonl(tmp_path / "data" / "test.jsonl", [slf5k_row(i, "test") for i in range(2)])
    run_dir = tmp_path / "run"
    config = str(REPO / "experiments" / "offline.yaml")
    sets = [a for o in small_run_overrides(data.parent, limit=4, eval_limit=2) for a in ("--set", o)]
    assert main(["run", config, "--run-dir", str(run_dir), *sets, "--until", "refine"]) == 0
    refinements = read_records(run_dir / "refinements.jsonl", Refinements)
    samples = read_records(run_dir / "samples.jsonl", Sample)
    assert len(refinements) == 4 and all(len(r.candidates) == 3 for r in refinements)

    pushed = push(ls_client, project_title, "select", build_tasks("select", samples, refinements=refinements))
    tasks = {t["data"]["sample_id"]: t for t in ls_client.export_tasks(pushed.project_id)}
    first, second = refinements[0].sample_id, refinements[1].sample_id
    ls_client.sdk.annotations.create(id=tasks[first]["id"], result=[pick("Candidate 3")])
    ls_client.sdk.annotations.create(id=tasks[second]["id"], result=[pick(NONE_OF_THEM)])

    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio["url"])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio["creds"].token)
    select_sets = ["--set", "selection.method=labelstudio", "--set", f"selection_options.labelstudio.project={project_title}"]
    select_sets += ["--set", "selection.also_score=[random]"]
    assert main(["run", config, "--run-dir", str(run_dir), *sets, *select_sets, "--until", "select"]) == 0
    selected = {s.sample_id: s for s in read_records(run_dir / "selected.jsonl", Selection)}
    assert set(selected) == {r.sample_id for r in refinements} - {second}  # "none of them": left out of fine-tuning
    assert (selected[first].index, selected[first].text) == (2, refinements[0].candidates[2].text)
    assert selected[first].extra["picked_by"] == "human"
    assert [selected[r.sample_id].extra["picked_by"] for r in refinements[2:]] == ["automatic", "automatic"]
    stats = json.loads((run_dir / ".ilf" / "stages" / "select.json").read_text())["summary"]
    assert (stats["picked_by_human"], stats["picked_automatically"], stats["no_acceptable_candidate"]) == (1, 2, 1)
    finished = json.loads((run_dir / ".ilf" / "stages" / "select.json").read_text())["finished"]

    assert main(["run", config, "--run-dir", str(run_dir), *sets, *select_sets, "--until", "select"]) == 0  # no new picks
    assert json.loads((run_dir / ".ilf" / "stages" / "select.json").read_text())["finished"] == finished

    third = refinements[2].sample_id  # a new pick reruns the select stage, and only it
    ls_client.sdk.annotations.create(id=tasks[third]["id"], result=[pick("Candidate 1"), edited("Fixed by hand.")])
    refine_marker = json.loads((run_dir / ".ilf" / "stages" / "refine.json").read_text())["finished"]
    assert main(["run", config, "--run-dir", str(run_dir), *sets, *select_sets, "--until", "select"]) == 0
    assert json.loads((run_dir / ".ilf" / "stages" / "refine.json").read_text())["finished"] == refine_marker
    stats = json.loads((run_dir / ".ilf" / "stages" / "select.json").read_text())["summary"]
    assert (stats["picked_by_human"], stats["picked_automatically"], stats["human_edited"]) == (2, 1, 1)
    selected = {s.sample_id: s for s in read_records(run_dir / "selected.jsonl", Selection)}
    assert (selected[third].index, selected[third].text, selected[third].extra["edited"]) == (0, "Fixed by hand.", True)

    # `ilf select` over files is the run's select stage: the same snapshot of people's picks, the same selections
    out = tmp_path / "cli" / "selected.jsonl"
    files = ["--samples", str(run_dir / "samples.jsonl"), "--refinements", str(run_dir / "refinements.jsonl"), "--out", str(out)]
    assert main(["select", *files, "--config", config, *sets, *select_sets]) == 0
    assert out.read_bytes() == (run_dir / "selected.jsonl").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["selected.jsonl"]  # its run folder is gone
