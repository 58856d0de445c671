"""A controlled world where feedback can be simulated and its effect measured exactly.

A post lists four facts about people (who does what to which object, where, on which day); two
of them are salient, and a good summary states the salient facts and nothing else. Which two
depends on the world's preference:

- ``cued``: the post marks them with a ``key`` cue (the others carry ``note``), so a model can
  see what matters and a refiner can guess the fix without being told;
- ``hidden``: the post marks three facts ``key`` (what its author thinks matters), but the
  annotator cares only about the marked facts on people it cares about, a rule drawn per seed
  (5 of the 10 people, or as an option verbs or objects). Nothing in the post shows the rule; only
  feedback, references or comparisons reveal it, which is what feedback is for. A policy that
  states every marked fact says too much, and must learn from feedback what to leave out.

Why the rule picks among marked facts rather than among all: the demo's tiny model copies a
fact by finding the cue in front of it. Copying a fact found by its content alone (``fact about
ben :`` -> ``ben sells ...``) stayed at 2% exact after 1,500 steps of nothing else, and worlds
whose facts all carried alike or topic cues taught the policy too little copying for fine-tuning
on their references to pass 0.80 recall (measured on development seeds), so the hidden rule
acts on the cues the model can use.

This follows the spirit of the controlled toy task of Scheurer et al. 2022 and of alpaca_farm's
simulated annotators; the world, its wording and its rules are our own.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from dataclasses import dataclass, field

from ilf.config import WorldConfig

NAMES = ("anna", "ben", "carla", "dan", "eva", "finn", "gina", "hugo", "iris", "jack")
VERBS = ("buys", "sells", "paints", "fixes", "finds", "loses", "borrows", "builds", "cleans", "moves")
OBJECTS = ("lamp", "bike", "boat", "clock", "desk", "guitar", "kite", "piano", "sofa", "van")
PLACES = ("paris", "rome", "oslo", "lima", "cairo", "tokyo", "delhi", "quito")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOTS = ("name", "verb", "object", "place", "day")
SLOT_VALUES = {"name": NAMES, "verb": VERBS, "object": OBJECTS, "place": PLACES, "day": DAYS}
VERSION = 6  # bump when the pretraining examples change (their posts, the annotator): cached world models are retrained

SALIENT_CUE, OTHER_CUE = "key", "note"
FACTS_PER_POST, SALIENT_PER_POST = 4, 2
PREFERENCES = typing.get_args(typing.get_type_hints(WorldConfig)["preference"])  # the forms the config accepts
RULE_SLOTS = typing.get_args(typing.get_type_hints(WorldConfig)["rule"])
KEYS_PER_HIDDEN_POST = 3


@dataclass(frozen=True)
class Fact:
    name: str
    verb: str
    object: str
    place: str
    day: str

    def text(self) -> str:
        return f"{self.name} {self.verb} {self.object} {self.place} {self.day} ."

    def prose(self) -> str:
        """How an annotator says it: with articles, so a sentence embedder reads it as language."""
        return f"{self.name} {self.verb} the {self.object} in {self.place} on {self.day}"

    def replace(self, slot: str, value: str) -> Fact:
        values = {s: getattr(self, s) for s in SLOTS}
        values[slot] = value
        return Fact(**values)


@dataclass(frozen=True)
class Rule:
    """The hidden preference: the annotator cares about the facts whose ``slot`` is one of ``values``."""

    slot: str
    values: tuple[str, ...]

    @classmethod
    def draw(cls, seed: int, slot: str = "name", size: int = 5) -> Rule:
        if slot not in RULE_SLOTS:
            raise ValueError(f"world.rule: unknown slot {slot!r} (one of {', '.join(RULE_SLOTS)})")
        pool = SLOT_VALUES[slot]
        if not 0 < size < len(pool):
            raise ValueError(f"world.rule_size: must be between 1 and {len(pool) - 1} for slot {slot!r}, got {size}")
        return cls(slot, tuple(sorted(random.Random(f"rule:{slot}:{size}:{seed}").sample(pool, size))))

    def matches(self, fact: Fact) -> bool:
        return getattr(fact, self.slot) in self.values


@dataclass
class Post:
    id: str
    facts: list[Fact]
    salient: list[bool]
    keys: list[bool] | None = None  # the facts the post marks `key`; None: the salient ones (the cued world)

    def text(self) -> str:
        marks = self.salient if self.keys is None else self.keys
        return " ".join(f"{SALIENT_CUE if k else OTHER_CUE} {f.text()}" for f, k in zip(self.facts, marks))

    @property
    def salient_facts(self) -> list[Fact]:
        return [f for f, s in zip(self.facts, self.salient) if s]

    @property
    def marked_facts(self) -> list[Fact]:
        return [f for f, k in zip(self.facts, self.salient if self.keys is None else self.keys) if k]

    def reference(self) -> str:
        return " ".join(f.text() for f in self.salient_facts)


def generate_posts(
    count: int, seed: int, prefix: str = "post", rule: Rule | None = None, hidden_form: bool = False, distinct_words: bool = True
) -> list[Post]:
    """``count`` posts from a seeded generator. No two facts of a post share a word (person,
    verb, object, place or day): a small model copies a fact word by word, and a word shared with
    another fact let it jump to that fact midway (the measured cause of most unfaithful copies).
    Pre-training draws its posts with ``distinct_words=False`` (only the people are distinct):
    a model that learned to copy where words repeat copies distinct-word posts faithfully, while
    one pre-trained on distinct-word posts only learned a shortcut (0.83 of its copies exact
    against 1.00, measured on development seeds).

    The cued world's posts mark their two salient facts. A hidden-world post (``rule`` given)
    marks three facts, of which the salient ones are those the rule matches: one or two, as
    often one as two, so the people (or verbs, objects) of the rule are no more common among the
    marked facts than the others and nothing in the text gives the rule away. ``hidden_form``
    without a rule gives posts of that form with the salient marked facts drawn at random
    (pre-training's examples)."""
    if rule is not None:
        return _posts_under_rule(count, seed, prefix, rule)
    rng = random.Random(f"facts-world:{seed}:{prefix}" + (":hidden-form" if hidden_form else ""))
    posts = []
    for index in range(count):
        names = rng.sample(NAMES, FACTS_PER_POST)
        if distinct_words:
            slots = {slot: rng.sample(SLOT_VALUES[slot], FACTS_PER_POST) for slot in ("verb", "object", "place", "day")}
            facts = [Fact(n, *(slots[slot][i] for slot in ("verb", "object", "place", "day"))) for i, n in enumerate(names)]
        else:
            facts = [Fact(n, rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES), rng.choice(DAYS)) for n in names]
        if hidden_form:
            keys = [True] * KEYS_PER_HIDDEN_POST + [False] * (FACTS_PER_POST - KEYS_PER_HIDDEN_POST)
            rng.shuffle(keys)
            marked = [i for i, k in enumerate(keys) if k]
            chosen = set(rng.sample(marked, rng.choice((1, 2))))
            posts.append(Post(f"{prefix}-{seed}-{index:05d}", facts, [i in chosen for i in range(FACTS_PER_POST)], keys))
            continue
        salient = [True] * SALIENT_PER_POST + [False] * (FACTS_PER_POST - SALIENT_PER_POST)
        rng.shuffle(salient)
        posts.append(Post(id=f"{prefix}-{seed}-{index:05d}", facts=facts, salient=salient))
    return posts


def _posts_under_rule(count: int, seed: int, prefix: str, rule: Rule) -> list[Post]:
    rng = random.Random(f"facts-world:{seed}:{prefix}:hidden")
    pool = SLOT_VALUES[rule.slot]
    inside = list(rule.values)
    outside = [v for v in pool if v not in rule.values]
    posts = []
    for index in range(count):
        keys = [True] * KEYS_PER_HIDDEN_POST + [False] * (FACTS_PER_POST - KEYS_PER_HIDDEN_POST)
        rng.shuffle(keys)
        wanted = rng.choice((1, 2))  # marked facts the rule matches; the other marked ones it does not
        matches = iter(rng.sample([True] * wanted + [False] * (KEYS_PER_HIDDEN_POST - wanted), KEYS_PER_HIDDEN_POST))
        salient = [next(matches) if k else False for k in keys]
        unmarked = [rng.random() < 0.5 for _ in keys]  # the unmarked fact matches the rule or not, at random
        wants = [s if k else u for s, k, u in zip(salient, keys, unmarked)]
        if rule.slot == "name":
            names = _split_draw(rng, inside, outside, wants)
        else:
            names = rng.sample(NAMES, FACTS_PER_POST)
        slots = {slot: rng.sample(SLOT_VALUES[slot], FACTS_PER_POST) for slot in ("verb", "object", "place", "day")}
        if rule.slot in slots:
            slots[rule.slot] = _split_draw(rng, inside, outside, wants)
        facts = [Fact(name, *(slots[slot][i] for slot in ("verb", "object", "place", "day"))) for i, name in enumerate(names)]
        posts.append(Post(id=f"{prefix}-{seed}-{index:05d}", facts=facts, salient=salient, keys=keys))
    return posts


def _split_draw(rng: random.Random, inside: list[str], outside: list[str], wants: list[bool]) -> list[str]:
    """One value per fact, from ``inside`` where it is wanted and ``outside`` where not, distinct
    within the post while each pool has enough values (a small rule or its complement repeats)."""

    def draw(pool: list[str], count: int) -> list[str]:
        return rng.sample(pool, count) if count <= len(pool) else [rng.choice(pool) for _ in range(count)]

    ins, outs = draw(inside, sum(wants)), draw(outside, len(wants) - sum(wants))
    return [ins.pop() if want else outs.pop() for want in wants]


def parse_summary(text: str) -> list[tuple[str, ...]]:
    """The fact-shaped spans of a summary: runs of words between full stops."""
    spans = []
    for chunk in text.replace("\n", " ").split("."):
        words = tuple(chunk.split())
        if words:
            spans.append(words)
    return spans


def slot_overlap(post: Post, summary: str) -> float:
    """For each salient fact, the best share of its five slots that one stated span matches, averaged."""
    stated = parse_summary(summary)
    best = []
    for fact in post.salient_facts:
        slots = fact.text()[:-2].split()
        best.append(max((sum(x == y for x, y in zip(slots, span)) / len(slots) for span in stated), default=0.0))
    return sum(best) / len(best)


@dataclass
class FactScores:
    recall: float  # share of salient facts stated exactly
    precision: float  # share of stated facts that are salient facts of the post (what the reader wants, and nothing else)
    faithful: float  # share of stated facts that are true facts of the post, salient or not
    stated: int


def score_summary(post: Post, summary: str) -> FactScores:
    true = {tuple(f.text()[:-2].split()) for f in post.facts}
    salient = {tuple(f.text()[:-2].split()) for f in post.salient_facts}
    stated = parse_summary(summary)
    found = salient & set(stated)
    return FactScores(
        recall=len(found) / len(salient),
        precision=sum(1 for span in stated if span in salient) / len(stated) if stated else 0.0,
        faithful=sum(1 for span in stated if span in true) / len(stated) if stated else 0.0,
        stated=len(stated),
    )


# ----- the simulated annotator -------------------------------------------------------------------

MISSING = (
    "the summary misses that {fact}",
    "you forgot to mention that {fact}",
    "please add that {fact}",
    "it should also say that {fact}",
    "an important point is missing : {fact}",
)
WRONG = (
    "that is wrong : {wrong} but in fact {fact}",
    "the summary gets it wrong , it is not that {wrong} , rather {fact}",
    "fix the mistake : {fact} , not {wrong_slot}",
    "incorrect detail : in the post {fact}",
)
EXTRA = (
    "too long : leave out that {fact}",
    "drop the part saying that {fact} , it is not important",
    "the summary should not mention that {fact}",
)
STATED_CARE = ("i care about {value} :", "what matters to me is {value} :")
STATED_INDIFFERENCE = ("i do not care about {value} :", "{value} does not matter to me :")
GOOD = ("the summary is fine", "looks good to me", "nothing to fix here")
UNHELPFUL = ("make it better", "i do not like this summary", "could be improved somehow", "hmm , not sure")


@dataclass
class SimulatedFeedback:
    text: str
    kind: str  # missing, wrong, extra, good, unhelpful, misleading
    target: Fact | None = None  # the fact the feedback asks to add (missing, wrong) or remove (extra)
    removes: Fact | None = None  # for wrong: the stated fact that must go

    def record(self) -> dict[str, object]:
        """What a feedback record keeps to judge later whether a refinement did what it asked."""
        return {"kind": self.kind, "target": _fact_slots(self.target), "removes": _fact_slots(self.removes)}

    @classmethod
    def from_record(cls, text: str, extra: dict[str, object]) -> SimulatedFeedback:
        def fact(value: object) -> Fact | None:
            return Fact(*value) if isinstance(value, list) else None

        return cls(text=text, kind=str(extra.get("kind", "unknown")), target=fact(extra.get("target")), removes=fact(extra.get("removes")))


def _fact_slots(fact: Fact | None) -> list[str] | None:
    return [getattr(fact, s) for s in SLOTS] if fact is not None else None


# The kinds of error every channel of the annotator makes, at the same rate: an answer that is
# wrong (a misleading critique, a flipped comparison or judgement, a shuffled ranking) or one that
# says nothing ("can't tell": a vague critique, a tie, "needs work" whatever the summary).
HONEST, WRONG_ANSWER, CANT_TELL = "honest", "wrong", "cant_tell"


def quality(post: Post, summary: str) -> int:
    """How good a summary is to the annotator, as one number: the salient facts it states exactly,
    less every stated fact that is not one (superfluous or untrue). A summary is fine as it is when
    it states every salient fact and nothing else (the most it can score)."""
    salient = {tuple(f.text()[:-2].split()) for f in post.salient_facts}
    stated = parse_summary(summary)
    return len(salient & set(stated)) - sum(1 for span in stated if span not in salient)


def preference(post: Post, a: str, b: str) -> str:
    """The annotator's honest overall preference between two summaries: 'a', 'b' or 'tie' (equal
    quality). What a person gives: one answer, not a graded key."""
    qa, qb = quality(post, a), quality(post, b)
    return "a" if qa > qb else "b" if qb > qa else "tie"


def oracle_preference(post: Post, a: str, b: str) -> str:
    """A noise-free, finely graded preference no person gives, for ablations only (``oracle``
    comparisons): more salient facts, then fewer others, then fewer untrue ones, then closer to the
    salient facts slot by slot (a garbled fact with the right person and object beats noise)."""

    def key(summary: str) -> tuple[float, float, float, float]:
        scores = score_summary(post, summary)
        return scores.recall, scores.precision, scores.faithful, slot_overlap(post, summary)

    ka, kb = key(a), key(b)
    return "a" if ka > kb else "b" if kb > ka else "tie"


@dataclass(frozen=True)
class Answer:
    """One answer of the annotator on a channel, and whether it was honest, wrong or "can't tell"."""

    value: object
    error: str = HONEST


@dataclass
class Annotator:
    """One simulated person, asked for feedback on every channel: critiques, pairwise comparisons,
    rankings and yes/no judgements. Each answer is honest, except a share ``noise`` of them, half
    wrong and half "can't tell" (see ``error``), whatever the channel.

    Critiques are drawn in order from one stream (a round's critiques are one sitting); the other
    channels draw each answer from its ``key`` (a sample and the texts shown), so the same question
    gets the same answer however often or in whatever order it is asked.
    """

    noise: float = 0.1
    seed: int = 0
    state_preference: float = 0.0  # share of actionable feedback that says in words what the annotator cares about
    preference_slot: str = "name"  # what such a statement names (the hidden rule's slot)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"annotator:{self.seed}")

    def error(self, rng: random.Random) -> str:
        """Whether one answer is honest, wrong or "can't tell": ``noise`` of them are not honest, half each."""
        if rng.random() < self.noise:
            return CANT_TELL if rng.random() < 0.5 else WRONG_ANSWER
        return HONEST

    def _keyed(self, channel: str, key: str) -> random.Random:
        return random.Random(f"{channel}:{self.seed}:{key}")

    def critique(self, post: Post, summary: str) -> SimulatedFeedback:
        feedback = self._critique(post, summary)
        actionable = feedback.kind in ("missing", "wrong", "extra") and feedback.target is not None
        if actionable and self.state_preference > 0 and self._rng.random() < self.state_preference:
            value = getattr(feedback.target, self.preference_slot)
            lead = self._rng.choice(STATED_INDIFFERENCE if feedback.kind == "extra" else STATED_CARE).format(value=value)
            feedback = dataclasses.replace(feedback, text=f"{lead} {feedback.text}")
        return feedback

    def _critique(self, post: Post, summary: str) -> SimulatedFeedback:
        rng = self._rng
        error = self.error(rng)
        if error == CANT_TELL:
            return SimulatedFeedback(rng.choice(UNHELPFUL), "unhelpful")
        if error == WRONG_ANSWER:
            absent = _absent_fact(post, rng)
            return SimulatedFeedback(rng.choice(MISSING).format(fact=absent.prose()), "misleading", target=absent)
        true = {tuple(f.text()[:-2].split()): f for f in post.facts}
        by_name = {f.name: f for f in post.facts}
        stated = parse_summary(summary)
        for span in stated:  # a wrong fact is the worst problem: fix it first
            if span in true:
                continue
            original = by_name.get(span[0]) if span else None
            if original is None or len(span) != len(SLOTS):
                continue  # garbled text with no person to correct; handled as missing below
            wrong = Fact(*span)
            differs = [s for s in SLOTS if getattr(wrong, s) != getattr(original, s)]
            template = rng.choice(WRONG)
            text = template.format(fact=original.prose(), wrong=wrong.prose(), wrong_slot=getattr(wrong, differs[0]) if differs else "")
            return SimulatedFeedback(text, "wrong", target=original, removes=wrong)
        stated_set = set(stated)
        missing = [f for f in post.salient_facts if tuple(f.text()[:-2].split()) not in stated_set]
        if missing:
            fact = rng.choice(missing)
            return SimulatedFeedback(rng.choice(MISSING).format(fact=fact.prose()), "missing", target=fact)
        extra = [f for f, s in zip(post.facts, post.salient) if not s and tuple(f.text()[:-2].split()) in stated_set]
        if extra:
            fact = rng.choice(extra)
            return SimulatedFeedback(rng.choice(EXTRA).format(fact=fact.prose()), "extra", target=fact)
        return SimulatedFeedback(rng.choice(GOOD), "good")

    def judgement(self, post: Post, summary: str, key: str) -> Answer:
        """ "Is this summary fine as it is?" (True: yes). Wrong flips the honest answer; "can't tell"
        is "needs work" whatever the summary, as a vague critique is."""
        fine = quality(post, summary) == len(post.salient_facts)
        error = self.error(self._keyed("judgement", key))
        return Answer(not fine if error == WRONG_ANSWER else False if error == CANT_TELL else fine, error)

    def judges_fine(self, post: Post, summary: str, key: str) -> bool:
        return bool(self.judgement(post, summary, key).value)

    def comparison(self, post: Post, a: str, b: str, key: str) -> Answer:
        """Which of two summaries is better: 'a', 'b' or 'tie'. Wrong gives the other side (either
        side, at random, where the honest answer is a tie); "can't tell" is a tie."""
        honest = preference(post, a, b)
        rng = self._keyed("comparison", f"{key}\n{a}\n{b}")
        error = self.error(rng)
        if error == CANT_TELL:
            return Answer("tie", error)
        if error == WRONG_ANSWER:
            return Answer({"a": "b", "b": "a"}.get(honest) or rng.choice("ab"), error)
        return Answer(honest, error)

    def prefers(self, post: Post, a: str, b: str, key: str = "") -> str:
        return str(self.comparison(post, a, b, key).value)

    def ranking(self, post: Post, summaries: list[str], key: str) -> Answer:
        """A ranking of ``summaries`` (1 is best; equal quality shares a rank). Wrong gives a random
        strict order; "can't tell" ranks them all equal."""
        rng = self._keyed("ranking", "\n".join([key, *summaries]))
        error = self.error(rng)
        if error == CANT_TELL:
            return Answer([1] * len(summaries), error)
        if error == WRONG_ANSWER:
            order = list(range(len(summaries)))
            rng.shuffle(order)
            ranks = [0] * len(summaries)
            for rank, index in enumerate(order, start=1):
                ranks[index] = rank
            return Answer(ranks, error)
        scores = [quality(post, s) for s in summaries]
        return Answer([1 + sum(other > score for other in scores) for score in scores], error)


def _absent_fact(post: Post, rng: random.Random) -> Fact:
    names = [n for n in NAMES if n not in {f.name for f in post.facts}]
    return Fact(rng.choice(names), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES), rng.choice(DAYS))


def carries(feedback: SimulatedFeedback, candidate: str) -> bool:
    """Whether a refinement does what the feedback asked: states the named fact (and drops the
    wrong one), or, for 'too long', no longer states the superfluous fact."""
    stated = set(parse_summary(candidate))
    if feedback.target is None:
        return False
    target = tuple(feedback.target.text()[:-2].split())
    if feedback.kind in ("missing", "misleading"):
        return target in stated
    if feedback.kind == "wrong":
        removed = tuple(feedback.removes.text()[:-2].split()) if feedback.removes else None
        return target in stated and removed not in stated
    if feedback.kind == "extra":
        return target not in stated
    return False


# ----- imperfect summaries for training the policy and the refiner -------------------------------


def flawed_summary(post: Post, rng: random.Random) -> tuple[str, str]:
    """A summary of the marked facts with one typical flaw (or none): (text, flaw). In the cued
    world the marked facts are the salient ones; in the hidden world they are what a policy that
    cannot know the annotator's rule states (choosing among them at random taught the demo's
    model no copying at all: 7% of its stated facts were true, measured)."""
    facts = list(post.marked_facts)
    flaw = rng.choices(["none", "drop", "wrong", "extra"], weights=[2, 4, 2, 2])[0]
    if flaw == "drop":
        facts.pop(rng.randrange(len(facts)))
    elif flaw == "wrong":
        index = rng.randrange(len(facts))
        slot = rng.choice(("verb", "object", "place", "day"))
        choices = [v for v in SLOT_VALUES[slot] if v != getattr(facts[index], slot)]
        facts[index] = facts[index].replace(slot, rng.choice(choices))
    elif flaw == "extra":
        others = [f for f in post.facts if f not in facts]
        order = {f: i for i, f in enumerate(post.facts)}
        facts = sorted(facts + [rng.choice(others)], key=lambda f: order[f])
    return " ".join(f.text() for f in facts), flaw


def apply_feedback(post: Post, summary: str, feedback: SimulatedFeedback) -> str:
    """What a refiner that follows the feedback exactly would write (its training target)."""
    order = {f: i for i, f in enumerate(post.facts)}
    true = {tuple(f.text()[:-2].split()): f for f in post.facts}
    stated = [true[s] for s in parse_summary(summary) if s in true]
    if feedback.kind == "missing" and feedback.target is not None and feedback.target not in stated:
        stated.append(feedback.target)
    elif feedback.kind == "wrong" and feedback.target is not None:
        stated = [f for f in stated if f != feedback.target] + [feedback.target]
    elif feedback.kind == "extra":
        stated = [f for f in stated if f != feedback.target]
    else:
        return summary  # vague, misleading or nothing to fix: keep what was there
    return " ".join(f.text() for f in sorted(set(stated), key=lambda f: order[f]))


def vocabulary() -> list[str]:
    """Every word the world, its prompts and its annotator can produce."""
    words: set[str] = set(NAMES + VERBS + OBJECTS + PLACES + DAYS)
    words |= {SALIENT_CUE, OTHER_CUE, ".", ",", ":", "the", "in", "on"}
    for template in MISSING + WRONG + EXTRA + GOOD + UNHELPFUL + STATED_CARE + STATED_INDIFFERENCE + PROMPT_WORDS:
        words |= {w for w in template.split() if not w.startswith("{")}
    return sorted(words)


PROMPT_WORDS = ("post : summary : feedback : improved : done : yes no",)
JUDGE_PROMPT = "post : {post} summary : {output} feedback : {feedback} improved : {candidate} done :"
JUDGE_ANSWERS = (" yes", " no")


POLICY_PROMPT = "post : {post} summary :"


def policy_prompt(post: Post) -> str:
    return POLICY_PROMPT.format(post=post.text())


def judge_prompt(post: Post, summary: str, feedback: str, candidate: str) -> str:
    """Pre-training's judge task (what instruct_rm asks in this world): did the candidate do what the feedback asked?"""
    return JUDGE_PROMPT.format(post=post.text(), output=summary, feedback=feedback, candidate=candidate)


def judge_candidates(post: Post, summary: str, feedback: SimulatedFeedback, rng: random.Random) -> list[tuple[str, bool]]:
    """A refinement that does what the feedback asked, and ones that do not: the summary kept as
    it was, another fact of the post added in its place, or the asked-for fact with a slot wrong."""
    done = apply_feedback(post, summary, feedback)
    wrong: list[str] = [summary]
    others = [f for f in post.facts if f.text() not in done]
    if others:
        wrong.append(f"{summary} {rng.choice(others).text()}".strip())
    if feedback.target is not None and feedback.kind in ("missing", "wrong"):
        slot = rng.choice(("verb", "object", "place", "day"))
        garbled = feedback.target.replace(slot, rng.choice([v for v in SLOT_VALUES[slot] if v != getattr(feedback.target, slot)]))
        wrong.append(done.replace(feedback.target.text(), garbled.text()))
    return [(done, carries(feedback, done)), *((text, carries(feedback, text)) for text in wrong)]


def refine_prompt(post: Post, summary: str, feedback: str | None) -> str:
    if feedback is None:
        return f"post : {post.text()} summary : {summary} improved :"
    return f"post : {post.text()} summary : {summary} feedback : {feedback} improved :"


# ----- posts as records --------------------------------------------------------------------------


def post_record(post: Post) -> dict[str, object]:
    """What a sample keeps of a post besides its text: the facts and which are salient."""
    record: dict[str, object] = {"facts": [[getattr(f, s) for s in SLOTS] for f in post.facts], "salient": list(post.salient)}
    if post.keys is not None:
        record["keys"] = list(post.keys)
    return record


def post_from_sample(sample: object) -> Post:
    """The post a facts-world sample was made from (its ``extra`` holds the facts)."""
    extra = getattr(sample, "extra", {}) or {}
    if "facts" not in extra or "salient" not in extra:
        raise ValueError(f"sample {getattr(sample, 'id', '?')!r} is not a facts-world sample (no facts in its extra fields)")
    return Post(
        id=sample.id,  # type: ignore[attr-defined]
        facts=[Fact(*f) for f in extra["facts"]],
        salient=[bool(s) for s in extra["salient"]],
        keys=[bool(k) for k in extra["keys"]] if "keys" in extra else None,
    )
