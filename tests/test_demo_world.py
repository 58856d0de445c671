import random

import pytest

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
        assert world.score_summary(post, post.reference()) == world.FactScores(recall=1.0, precision=1.0, faithful=1.0, stated=2)


def test_facts_of_a_post_share_no_word_except_in_pretraining_posts() -> None:
    def shares_a_word(post: world.Post) -> bool:
        return any(len({getattr(f, slot) for f in post.facts}) < len(post.facts) for slot in world.SLOT_VALUES)

    rules = [None, world.Rule.draw(0), world.Rule.draw(0, slot="verb"), world.Rule.draw(0, slot="object")]
    for rule in rules:
        assert not any(shares_a_word(p) for p in world.generate_posts(300, seed=2, rule=rule))
    # pre-training copies from posts whose facts repeat words, so its model must copy a fact whole
    pretraining = world.generate_posts(300, seed=2, prefix="pretrain", distinct_words=False)
    assert sum(shares_a_word(p) for p in pretraining) > 200
    assert not any(len({f.name for f in p.facts}) < 4 for p in pretraining)


def test_scores_count_exact_facts() -> None:
    post = world.generate_posts(1, seed=0)[0]
    first, second = post.salient_facts
    other = next(f for f, s in zip(post.facts, post.salient) if not s)
    assert world.score_summary(post, first.text()).recall == 0.5
    wrong = first.replace("object", next(o for o in world.OBJECTS if o != first.object))
    scores = world.score_summary(post, f"{wrong.text()} {second.text()} {other.text()}")
    assert (scores.recall, scores.precision, scores.faithful, scores.stated) == (0.5, 1 / 3, 2 / 3, 3)


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


def test_a_comparison_is_one_overall_preference_and_the_graded_key_is_the_oracle() -> None:
    annotator = world.Annotator(noise=0.0)
    post = world.generate_posts(1, seed=11)[0]
    first, second = post.salient_facts
    other = next(f for f, s in zip(post.facts, post.salient) if not s)
    assert annotator.prefers(post, post.reference(), first.text(), key="x") == "a"
    assert annotator.prefers(post, first.text(), post.reference(), key="x") == "b"
    # one salient fact and nothing else equals both salient facts and one superfluous: same quality, a tie
    assert annotator.prefers(post, first.text(), f"{first.text()} {second.text()} {other.text()}", key="x") == "tie"
    near = first.replace("day", next(d for d in world.DAYS if d != first.day))
    # a garbled fact is no better to a person than noise; only the oracle's graded key tells them apart
    assert annotator.prefers(post, "noise words .", near.text(), key="x") == "tie"
    assert world.oracle_preference(post, "noise words .", near.text()) == "b"
    assert annotator.prefers(post, first.text(), first.text(), key="x") == "tie"


def _flawed_pairs(count: int, seed: int) -> list[tuple[world.Post, str, str]]:
    rng = random.Random(seed)
    posts = world.generate_posts(count, seed=seed)
    return [(p, world.flawed_summary(p, rng)[0], world.flawed_summary(p, rng)[0]) for p in posts]


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_every_channel_errs_at_the_configured_rate_with_the_same_kinds_of_error(noise: float) -> None:
    """Critiques, comparisons, rankings and yes/no judgements of one annotator: measured against its
    honest answers, each channel is wrong on noise/2 and says "can't tell" on noise/2 of its answers."""
    annotator = world.Annotator(noise=noise, seed=21)
    items = _flawed_pairs(4000, seed=22)
    n = len(items)
    tolerance = 4 * (noise * (1 - noise) / n) ** 0.5  # four standard errors of a share measured on n answers

    def near(share: float, expected: float) -> bool:
        return abs(share - expected) < max(tolerance, 4 * (expected * (1 - expected) / n) ** 0.5)

    critiques = [annotator.critique(post, a).kind for post, a, _ in items]
    assert near(critiques.count("misleading") / n, noise / 2) and near(critiques.count("unhelpful") / n, noise / 2)

    decisive = [(post, a, b) for post, a, b in items if world.preference(post, a, b) != "tie"]
    answers = [annotator.comparison(post, a, b, key=post.id) for post, a, b in decisive]
    honest = [world.preference(post, a, b) for post, a, b in decisive]
    wrong = sum(ans.value not in (truth, "tie") for ans, truth in zip(answers, honest)) / len(decisive)
    cant_tell = sum(ans.value == "tie" for ans in answers) / len(decisive)
    assert near(wrong, noise / 2) and near(cant_tell, noise / 2), (wrong, cant_tell)
    assert all(ans.value == truth for ans, truth in zip(answers, honest) if ans.error == world.HONEST)

    judged = [annotator.judgement(post, a, key=f"{post.id}\n{a}") for post, a, _ in items]
    fine = [world.quality(post, a) == len(post.salient_facts) for post, a, _ in items]
    flipped = sum(j.value != f and j.error == world.WRONG_ANSWER for j, f in zip(judged, fine)) / n
    assert near(flipped, noise / 2) and near(sum(j.error == world.CANT_TELL for j in judged) / n, noise / 2)
    assert all(j.value is False for j in judged if j.error == world.CANT_TELL)
    assert all(j.value == f for j, f in zip(judged, fine) if j.error == world.HONEST)

    rankings = [annotator.ranking(post, [a, b, post.reference()], key=post.id) for post, a, b in items]
    honest_ranks = [world.Annotator(noise=0.0).ranking(post, [a, b, post.reference()], key=post.id).value for post, a, b in items]
    assert near(sum(r.error == world.CANT_TELL for r in rankings) / n, noise / 2)
    assert near(sum(r.error == world.WRONG_ANSWER for r in rankings) / n, noise / 2)
    assert all(r.value == h for r, h in zip(rankings, honest_ranks) if r.error == world.HONEST)
    assert all(r.value == [1, 1, 1] for r in rankings if r.error == world.CANT_TELL)
    # the same question gets the same answer, whenever it is asked
    post, a, b = decisive[0]
    assert annotator.comparison(post, a, b, key=post.id) == answers[0]


# ----- the hidden-preference world ---------------------------------------------------------------


def _marked_names(text: str) -> list[str]:
    words = text.split()
    return [words[i + 1] for i, w in enumerate(words) if w == world.SALIENT_CUE]


def test_hidden_rule_is_invisible_in_the_post_text() -> None:
    rule = world.Rule.draw(seed=7)
    posts = world.generate_posts(3000, seed=5, rule=rule)
    texts = [p.text() for p in posts]
    assert all(len(_marked_names(t)) == world.KEYS_PER_HIDDEN_POST for t in texts)
    for post in posts[:50]:  # the text is the same whichever marked facts matter: it cannot carry the rule
        flipped = world.Post(id=post.id, facts=post.facts, salient=[not s for s in post.salient], keys=post.keys)
        assert flipped.text() == post.text()
        assert 1 <= sum(post.salient) <= 2
        assert post.salient == [bool(k) and rule.matches(f) for f, k in zip(post.facts, post.keys or [])]
    # the rule's people are no more common than the others, marked or not
    for counts in (
        {n: sum(t.split().count(n) for t in texts) for n in world.NAMES},
        {n: sum(_marked_names(t).count(n) for t in texts) for n in world.NAMES},
    ):
        inside = sum(counts[n] for n in rule.values) / len(rule.values)
        outside = sum(counts[n] for n in world.NAMES if n not in rule.values) / (len(world.NAMES) - len(rule.values))
        assert abs(inside - outside) < 0.05 * outside, counts


def test_hidden_rule_differs_by_seed_and_slot() -> None:
    rules = {world.Rule.draw(seed) for seed in range(6)}
    assert len(rules) > 1 and all(r.slot == "name" and len(r.values) == 5 for r in rules)
    verbs = world.Rule.draw(3, slot="verb", size=4)
    assert len(verbs.values) == 4 and set(verbs.values) <= set(world.VERBS)
    for post in world.generate_posts(200, seed=1, rule=verbs):
        assert post.salient == [bool(k) and verbs.matches(f) for f, k in zip(post.facts, post.keys or [])]


def test_hidden_rule_is_recoverable_from_the_annotators_feedback_text() -> None:
    """What a person learns reading the critiques: which people they ask to add, which to leave out."""
    rule = world.Rule.draw(seed=2)
    annotator = world.Annotator(noise=0.1, seed=4, state_preference=0.25)
    rng = random.Random(0)
    asked_to_add: dict[str, int] = {}
    asked_to_drop: dict[str, int] = {}
    stated: set[str] = set()
    for post in world.generate_posts(400, seed=9, rule=rule):
        marked = post.marked_facts
        summary = " ".join(f.text() for f in rng.sample(marked, rng.randint(1, len(marked))))  # a policy that knows no rule
        text = annotator.critique(post, summary).text
        for fact in post.facts:
            if fact.prose() in text:
                bucket = asked_to_drop if any(w in text for w in ("leave out", "drop", "should not")) else asked_to_add
                bucket[fact.name] = bucket.get(fact.name, 0) + 1
        if text.startswith(("i care about", "what matters to me is")):
            stated.add(text.split(":")[0].split()[-1])
    recovered = {name for name in world.NAMES if asked_to_add.get(name, 0) > asked_to_drop.get(name, 0)}
    assert recovered == set(rule.values)
    assert stated and stated <= set(rule.values)


def test_hidden_world_comparisons_follow_the_rule() -> None:
    rule = world.Rule.draw(seed=2)
    annotator = world.Annotator(noise=0.0)
    for post in world.generate_posts(30, seed=3, rule=rule):
        wanted = " ".join(f.text() for f in post.salient_facts)
        everything_marked = " ".join(f.text() for f in post.marked_facts)
        assert annotator.prefers(post, wanted, everything_marked) == "a"


def test_pretraining_teaches_the_marked_facts_and_acting_on_feedback_but_no_rule() -> None:
    from ilf.config import PretrainConfig
    from ilf.demo.models import training_examples

    examples = training_examples(PretrainConfig(examples=4000, hidden_share=0.5, judge_share=0.1, seed=1))
    hidden_form = [e for e in examples if len(_marked_names(e["prompt"].split(" summary :")[0])) == world.KEYS_PER_HIDDEN_POST]
    assert 0.4 < len(hidden_form) / len(examples) < 0.6
    judged = [e["completion"] for e in examples if e["prompt"].endswith("done :")]
    assert 0.05 < len(judged) / len(examples) < 0.13 and 0.4 < judged.count(" yes") / len(judged) < 0.6
    # the refiner's feedback asks to add or drop the facts of every person about equally often: no rule to learn
    asked = {n: 0 for n in world.NAMES}
    for example in hidden_form:
        if " feedback : " in example["prompt"]:
            feedback = example["prompt"].split(" feedback : ")[1]
            for name in world.NAMES:
                if f" {name} " in f" {feedback} " and name in example["prompt"].split(" summary : ")[0].split():
                    asked[name] += 1
    mean = sum(asked.values()) / len(asked)
    assert mean > 20 and all(abs(c - mean) < 4 * mean**0.5 for c in asked.values()), asked  # within sampling noise
    vocab = set(world.vocabulary())
    assert all(set((e["prompt"] + e["completion"]).split()) <= vocab for e in examples)


def test_judge_candidates_are_labelled_by_whether_they_do_what_the_feedback_asks() -> None:
    rng = random.Random(3)
    annotator = world.Annotator(noise=0.0)
    for post in world.generate_posts(40, seed=2, rule=world.Rule.draw(1)):
        summary, _ = world.flawed_summary(post, rng)
        feedback = annotator.critique(post, summary)
        if feedback.kind == "good":
            continue
        (right, right_done), *wrong = world.judge_candidates(post, summary, feedback, rng)
        assert right_done and right == world.apply_feedback(post, summary, feedback)
        assert wrong and not any(done for _, done in wrong)


def test_the_facts_worlds_validation_posts_are_apart_from_its_test_posts() -> None:
    from ilf.config import load_config
    from ilf.data import load_eval

    def held_out(*sets: str) -> list:
        return load_eval(load_config(None, ["data.loader=facts_world", "task.name=facts", "world.preference=hidden", *sets])).samples

    test = held_out("data.eval_limit=300")
    validation = held_out("data.eval_split=validation", "data.eval_limit=200")
    assert len(validation) == 200 and all(s.id.startswith("validation-") for s in validation)
    assert not {s.inputs["post"] for s in validation} & {s.inputs["post"] for s in test}
    assert [s.id for s in test] == [s.id for s in held_out("data.eval_limit=300", "seed=5")]  # the same test posts for every run
