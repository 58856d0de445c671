"""The facts world's feedback source asks one annotator on every channel: its comparisons are that
annotator's (noise included), a ranking is one question priced by the outputs it ranks, and the
noise-free graded key answers only when asked for by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilf.config import build_config
from ilf.demo import world
from ilf.feedback.simulated import world_annotator
from ilf.pipeline import Pipeline
from ilf.records import Comparison, Sample, read_records, write_records

POSTS = world.generate_posts(6, seed=31)
SAMPLES = [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in POSTS]


def _compared(tmp_path: Path, name: str, **simulated: object) -> tuple[Pipeline, list[Comparison]]:
    raw = {
        "method": "dpo",
        "seed": 3,
        "data": {"loader": "facts_world", "limit": len(SAMPLES)},
        "task": {"name": "facts"},
        "feedback": {"source": "simulated"},
        "feedback_options": {"simulated": {"comparisons_per_sample": 4, **simulated}},
        "world": {"annotator_noise": 0.3},
        "policy": {"name_or_path": "tiny:gpt2", "device": "cpu"},
        "outputs": {"sampling": {"do_sample": True, "temperature": 1.5, "max_new_tokens": 12, "batch_size": 24}},
    }
    run = Pipeline(build_config(raw, "test"), tmp_path / name)
    write_records(run.paths.samples, SAMPLES)
    comparisons = run.feedback_source.compare(run.view, "test")
    write_records(run.paths.comparisons, comparisons)
    return run, read_records(run.paths.comparisons, Comparison)


def test_comparisons_are_the_annotators_answers_with_its_noise_and_rankings_are_priced_per_output(tmp_path: Path) -> None:
    run, pairs = _compared(tmp_path, "pairs")
    assert pairs and all(c.a != c.b for c in pairs)  # identical samples are never shown side by side
    annotator = world_annotator(run.config, offset=1)
    posts = {p.id: p for p in POSTS}
    for c in pairs:  # each verdict is the annotator's answer to that very question, noise and all
        assert c.preferred == annotator.comparison(posts[c.sample_id], c.a, c.b, key=c.sample_id).value
    assert any(c.preferred != world.preference(posts[c.sample_id], c.a, c.b) for c in pairs)  # the noise is there
    cost = run.method.feedback_cost(run.view)
    assert cost == {"comparisons": len(pairs)}
    assert run.method.spent(run.view)["seconds.comparisons"] == 37 * len(pairs)

    ranked_run, ranked = _compared(tmp_path, "ranking", ask="ranking")
    rankings = {c.extra["ranking"]: c.extra["ranked"] for c in ranked}
    assert set(rankings) <= {s.id for s in SAMPLES} and all(size >= 2 for size in rankings.values())
    cost = ranked_run.method.feedback_cost(ranked_run.view)
    assert cost == {"rankings": len(rankings)}  # one question a post, however many pairs it gives
    assert ranked_run.method.spent(ranked_run.view)["annotator_seconds"] == 18 * sum(rankings.values())
    assert ranked_run.method.sample_seconds(ranked_run.view, SAMPLES) == [18 * rankings.get(s.id, 0) for s in SAMPLES]


def test_the_noise_free_graded_comparisons_answer_only_by_name(tmp_path: Path) -> None:
    _, oracle = _compared(tmp_path, "oracle", comparisons_by="oracle")
    posts = {p.id: p for p in POSTS}
    assert oracle and all(c.annotator == "oracle" for c in oracle)
    for c in oracle:
        assert c.preferred == world.oracle_preference(posts[c.sample_id], c.a, c.b)
    with pytest.raises(Exception, match="comparisons_by"):
        _compared(tmp_path, "bad", comparisons_by="perfect")
