import pytest
import torch

from ilf.config import ModelConfig, load_config
from ilf.models import load_model
from ilf.records import Sample, format_inputs
from ilf.selection import SelectionItem, select
from ilf.selection.embedding import EmbeddingSelector, load_embedder
from ilf.selection.instruct_rm import PROMPT_VARIANTS, InstructRMSelector
from ilf.selection.random_choice import RandomSelector

POST = Sample(
    id="dog",
    inputs={"title": "My dog ran away", "post": "My dog ran off during a storm. Two days later a neighbor found him at the park."},
    references=["My dog ran away in a storm and a neighbor found him at the park two days later."],
)
FEEDBACK = "The summary should say that a neighbor found the dog at the park."
CANDIDATES = [
    "My dog ran away during a storm and I was worried.",
    "My dog ran away in a storm; two days later a neighbor found him at the park.",
    "I need advice about my landlord and the rent.",
]


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def test_embedding_picks_the_candidate_that_does_what_the_feedback_asks(embedder) -> None:
    item = SelectionItem(sample=POST, output="My dog ran away.", feedback=FEEDBACK, candidates=CANDIDATES)
    (scores,) = EmbeddingSelector(model=embedder).score([item])
    assert max(range(3), key=scores.__getitem__) == 1
    assert scores[1] > scores[0] + 0.05 and scores[0] > scores[2]  # on topic but missing the point beats off topic


def test_selection_records_every_selectors_score(embedder, monkeypatch) -> None:
    monkeypatch.setattr("ilf.selection.embedding.load_embedder", lambda *a, **k: embedder)
    item = SelectionItem(sample=POST, output="My dog ran away.", feedback=FEEDBACK, candidates=CANDIDATES)
    config = load_config(None, ["selection.method=embedding", "selection.also_score=[random, oracle_rouge]"])
    (chosen,) = select([item], config)
    assert (chosen.index, chosen.text, chosen.selector) == (1, CANDIDATES[1], "embedding")
    assert [set(c.scores) for c in chosen.candidates] == [{"embedding", "random", "oracle_rouge"}] * 3
    oracle = [c.scores["oracle_rouge"] for c in chosen.candidates]
    assert max(range(3), key=oracle.__getitem__) == 1


def test_each_distinct_text_is_embedded_once(embedder) -> None:
    seen: list[str] = []

    class Counting:
        def encode(self, texts, **kwargs):
            seen.extend(texts)
            return embedder.encode(texts, **kwargs)

    items = [
        SelectionItem(sample=POST, output=None, feedback=FEEDBACK, candidates=[CANDIDATES[0], CANDIDATES[1], CANDIDATES[0]]),
        SelectionItem(sample=POST, output=None, feedback=FEEDBACK, candidates=[CANDIDATES[1], CANDIDATES[2]]),
    ]
    scores = EmbeddingSelector(model=Counting()).score(items)
    assert sorted(seen) == sorted({FEEDBACK, *CANDIDATES})
    assert scores[0][0] == pytest.approx(scores[0][2]) and scores[0][1] == pytest.approx(scores[1][0])


def test_random_selector_is_seeded_per_sample() -> None:
    items = [SelectionItem(sample=Sample(id=f"s{i}", inputs={}), output=None, feedback="f", candidates=list("abcde")) for i in range(40)]
    first = RandomSelector(seed=1).score(items)
    assert first == RandomSelector(seed=1).score(items)
    assert first != RandomSelector(seed=2).score(items)
    picks = {max(range(5), key=row.__getitem__) for row in first}
    assert picks == {0, 1, 2, 3, 4}  # not stuck on one position


def test_instruct_rm_scores_are_yes_probability_from_real_logits() -> None:
    judge = load_model(ModelConfig(name_or_path="tiny:llama", seed=5, dtype="float32"))  # batched and unbatched agree exactly in float32
    selector = InstructRMSelector(judge, batch_size=2)
    assert len(PROMPT_VARIANTS) >= 3
    item = SelectionItem(sample=POST, output="My dog ran away.", feedback=FEEDBACK, candidates=CANDIDATES)
    (scores,) = selector.score([item])

    def p_yes(prompt: str, positive: str, negative: str) -> float:
        ids = judge.tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            probs = judge.model(ids).logits[0, -1].softmax(-1)
        pos = judge.tokenizer(positive, add_special_tokens=False)["input_ids"][0]
        neg = judge.tokenizer(negative, add_special_tokens=False)["input_ids"][0]
        return float(probs[pos] / (probs[pos] + probs[neg]))

    for index, candidate in enumerate(CANDIDATES):
        expected = sum(
            p_yes(t.format(inputs=format_inputs(POST.inputs), output="My dog ran away.", feedback=FEEDBACK, candidate=candidate), pos, neg)
            for t, pos, neg in PROMPT_VARIANTS
        ) / len(PROMPT_VARIANTS)
        assert scores[index] == pytest.approx(expected, abs=1e-4)
    assert len({round(s, 6) for s in scores}) == 3  # the candidates are told apart


def test_edit_spans_are_the_words_added_and_removed() -> None:
    from ilf.selection.embedding_edit import edit_spans

    original = "anna buys lamp paris monday . ben fixes bike rome friday ."
    assert edit_spans(original, original) == ("", "")
    assert edit_spans(original, original + " carla sells van oslo sunday .") == ("carla sells van oslo sunday .", "")
    assert edit_spans(original, "anna buys lamp paris monday .") == ("", "ben fixes bike rome friday .")
    assert edit_spans(original, original.replace("bike", "boat")) == ("boat", "bike")


def test_embedding_edit_scores_what_changed_not_the_overlap_with_the_feedback(embedder) -> None:
    """The feedback names a missing fact. One candidate adds it; another rewrites the fact that was
    right with the feedback's person, which shares more words with the feedback as a whole."""
    from ilf.selection.embedding_edit import UNCHANGED, EmbeddingEditSelector, edit_spans

    output = "anna buys the lamp in paris on monday ."
    feedback = "please add that ben sells the car in rome on friday"
    adds_it = "anna buys the lamp in paris on monday . ben sells the car in rome on friday ."
    rewrites_wrong_fact = "ben sells the car in rome on monday ."
    item = SelectionItem(sample=POST, output=output, feedback=feedback, candidates=[rewrites_wrong_fact, adds_it, output])
    (plain,) = EmbeddingSelector(model=embedder).score([item])
    (edit,) = EmbeddingEditSelector(model=embedder).score([item])
    assert plain[0] > plain[1]  # whole-text similarity prefers the rewrite
    assert max(range(3), key=edit.__getitem__) == 1 and edit[2] == UNCHANGED  # the edit score prefers the addition
    vectors = EmbeddingSelector(model=embedder).embed([feedback, *edit_spans(output, adds_it)])
    assert edit[1] == pytest.approx(float(vectors[feedback] @ vectors["ben sells the car in rome on friday ."]), abs=1e-5)


def test_instruct_rm_asks_the_judge_of_its_options_whose_files_the_select_stage_reads(tmp_path) -> None:
    from ilf import reads
    from ilf.models import save_model

    judge = load_model(ModelConfig(name_or_path="tiny:llama", seed=5, dtype="float32"))
    save_model(judge.model, judge.tokenizer, tmp_path / "judge")
    sets = ["method=ilf", "data.loader=facts_world", "task.name=facts", "feedback.source=simulated", "selection.method=instruct_rm"]
    config = load_config(None, [*sets, f"selection_options.instruct_rm.judge.name_or_path={tmp_path / 'judge'}"])
    built = InstructRMSelector.from_config(config)
    same = [n for n, p in built.judge.model.named_parameters() if torch.equal(p, dict(judge.model.named_parameters())[n])]
    assert len(same) == len(list(judge.model.parameters()))  # the saved judge, not the refiner (tiny:gpt2)
    # without one, the refiner judges
    assert InstructRMSelector.models(load_config(None, sets)) == [load_config(None, sets).refiner_model]

    # the select stage records the judge's files by content, so a judge retrained in place reruns it
    with reads.recording(tmp_path / "run") as recorded:
        InstructRMSelector.from_config(config)
    digest = reads.content_digest(tmp_path / "judge")
    assert ["content", str((tmp_path / "judge").resolve()), digest] in recorded.entries()
    (tmp_path / "judge" / "config.json").write_text((tmp_path / "judge" / "config.json").read_text() + "\n")
    assert reads.content_digest(tmp_path / "judge") != digest
