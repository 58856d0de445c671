import random

from ilf.demo import world


def test_generator_is_seeded_and_marks_two_salient_facts_that_the_reference_states() -> None:
    posts = world.generate_posts(50, seed=3)
    assert [p.text() for p in posts] == [p.text() for p in world.generate_posts(50, seed=3)]
    assert [p.text() for p in posts] != [p.text() for p in world.generate_posts(50, seed=4)]
    for post in posts:
        assert sum(post.salient) == 2 and len({f.name for f in post.facts}) == 4
        for fact, salient in zip(post.facts, post.salient):
            cue = world.SALIENT_CUE if salient else world.OTHER_CUE
            assert f"{cue} {fact.text()}" in post.text()
        assert world.score_summary(post, post.reference()) == world.FactScores(recall=1.0, precision=1.0, stated=2)


def test_scores_count_exact_facts() -> None:
    post = world.generate_posts(1, seed=0)[0]
    first, second = post.salient_facts
    other = next(f for f, s in zip(post.facts, post.salient) if not s)
    assert world.score_summary(post, first.text()).recall == 0.5
    wrong = first.replace("object", next(o for o in world.OBJECTS if o != first.object))
    scores = world.score_summary(post, f"{wrong.text()} {second.text()} {other.text()}")
    assert (scores.recall, scores.precision, scores.stated) == (0.5, 2 / 3, 3)


def test_annotator_names_a_missing_fact_that_is_truly_missing() -> None:
    annotator = world.Annotator(noise=0.0, seed=1)
    for post in world.generate_posts(40, seed=5):
        kept = random.Random(post.id).choice(post.salient_facts)
        feedback = annotator.critique(post, kept.text())
        assert feedback.kind == "missing"
        missing = next(f for f in post.salient_facts if f != kept)
        assert feedback.target == missing and missing.prose() in feedback.text
        assert world.carries(feedback, f"{kept.text()} {missing.text()}") and not world.carries(feedback, kept.text())


def test_annotator_names_a_wrong_fact_and_its_correction() -> None:
    annotator = world.Annotator(noise=0.0, seed=2)
    post = world.generate_posts(1, seed=6)[0]
    first, second = post.salient_facts
    wrong = first.replace("place", next(p for p in world.PLACES if p != first.place))
    feedback = annotator.critique(post, f"{wrong.text()} {second.text()}")
    assert (feedback.kind, feedback.target, feedback.removes) == ("wrong", first, wrong)
    assert first.place in feedback.text
    fixed = world.apply_feedback(post, f"{wrong.text()} {second.text()}", feedback)
    assert world.score_summary(post, fixed).recall == 1.0 and world.carries(feedback, fixed)


def test_annotator_asks_to_drop_superfluous_facts_and_praises_a_good_summary() -> None:
    annotator = world.Annotator(noise=0.0, seed=3)
    post = world.generate_posts(1, seed=7)[0]
    other = next(f for f, s in zip(post.facts, post.salient) if not s)
    padded = " ".join(f.text() for f in post.facts if f in post.salient_facts or f == other)
    feedback = annotator.critique(post, padded)
    assert (feedback.kind, feedback.target) == ("extra", other) and other.prose() in feedback.text
    assert world.apply_feedback(post, padded, feedback) == post.reference()
    assert annotator.critique(post, post.reference()).kind == "good"


def test_noise_gives_unhelpful_or_misleading_feedback_at_the_configured_share() -> None:
    annotator = world.Annotator(noise=0.3, seed=4)
    posts = world.generate_posts(400, seed=8)
    kinds = [annotator.critique(p, p.salient_facts[0].text()).kind for p in posts]
    noisy = sum(k in ("unhelpful", "misleading") for k in kinds) / len(kinds)
    assert 0.22 < noisy < 0.38
    misleading = [annotator.critique(p, "") for p in posts]
    for post, feedback in zip(posts, misleading):
        if feedback.kind == "misleading":
            assert feedback.target not in post.facts  # it asks for something the post never said


def test_phrasings_vary() -> None:
    annotator = world.Annotator(noise=0.0, seed=9)
    texts = {annotator.critique(p, p.salient_facts[0].text()).text.split(" that ")[0] for p in world.generate_posts(60, seed=9)}
    assert len(texts) >= 4


def test_every_generated_word_is_in_the_vocabulary() -> None:
    vocab = set(world.vocabulary())
    annotator = world.Annotator(noise=0.5, seed=0)
    rng = random.Random(0)
    for post in world.generate_posts(100, seed=1):
        summary, _ = world.flawed_summary(post, rng)
        feedback = annotator.critique(post, summary)
        for text in (world.refine_prompt(post, summary, feedback.text), world.policy_prompt(post)):
            assert set(text.split()) <= vocab, set(text.split()) - vocab


def test_preference_favours_more_salient_facts_then_closer_facts() -> None:
    annotator = world.Annotator(noise=0.0)
    post = world.generate_posts(1, seed=11)[0]
    first, second = post.salient_facts
    assert annotator.prefers(post, post.reference(), first.text()) == "a"
    assert annotator.prefers(post, first.text(), post.reference()) == "b"
    near = first.replace("day", next(d for d in world.DAYS if d != first.day))
    assert annotator.prefers(post, "noise words .", near.text()) == "b"  # four of five slots right beats nothing
    assert annotator.prefers(post, first.text(), first.text()) == "tie"
