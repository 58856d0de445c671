"""selection_hits scores the pick that was trained on, ties broken as the select step broke them."""

from __future__ import annotations

import json
from pathlib import Path

from ilf.config import build_config
from ilf.demo import world
from ilf.metrics.selection_hits import SelectionHits
from ilf.pipeline import Pipeline
from ilf.records import Candidate, Feedback, Selection, write_records


def test_the_picking_selectors_hit_rate_reads_the_pick_that_was_trained_on(tmp_path: Path) -> None:
    post = world.generate_posts(1, seed=4)[0]
    missing = post.salient_facts[1]
    asked = world.SimulatedFeedback(f"please add that {missing.prose()}", "missing", target=missing)
    without = post.salient_facts[0].text()
    with_it = f"{without} {missing.text()}"
    raw = {"data": {"loader": "facts_world"}, "task": {"name": "facts"}, "feedback": {"source": "simulated"}}
    raw["selection"] = {"method": "unit_tests", "also_score": ["random"]}
    run = Pipeline(build_config(raw, "test"), tmp_path / "run")
    write_records(run.paths.feedback, [Feedback(post.id, asked.text, output=without, extra=asked.record())])
    # the picking selector scores both alike; the select step broke the tie towards the second candidate
    candidates = [Candidate(without, {"unit_tests": 1.0, "random": 0.2}), Candidate(with_it, {"unit_tests": 1.0, "random": 0.7})]
    write_records(run.paths.selected, [Selection(post.id, "unit_tests", 1, with_it, candidates)])
    scores = SelectionHits().score_round(run)
    assert scores["hit.unit_tests"] == 1.0  # the trained-on pick did what was asked; a plain argmax would say 0.0
    assert scores["hit.random"] == 1.0 and scores["hit.any_candidate"] == 1.0
    assert json.dumps(scores)  # plain numbers, as metrics.json keeps them
