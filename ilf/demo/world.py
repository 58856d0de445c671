"""A controlled world where feedback can be simulated and its effect measured exactly.

A post lists four facts about people (who does what to which object, where, on which day); two
of them are marked salient by a ``key`` cue, the others carry ``note``. A good summary states the
salient facts and nothing else. Because every fact is a contiguous span with fixed slots, a
summary can be parsed back into facts, scored for recall and precision, and critiqued by a
simulated annotator that names what is missing, wrong or superfluous, in varied phrasings, and
sometimes (a configurable share) gives unhelpful or wrong feedback, as people do.

This follows the spirit of the controlled toy task of Scheurer et al. 2022 and of alpaca_farm's
simulated annotators; the world, its wording and its rules are our own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMES = ("anna", "ben", "carla", "dan", "eva", "finn", "gina", "hugo", "iris", "jack")
VERBS = ("buys", "sells", "paints", "fixes", "finds", "loses", "borrows", "builds", "cleans", "moves")
OBJECTS = ("lamp", "bike", "boat", "clock", "desk", "guitar", "kite", "piano", "sofa", "van")
PLACES = ("paris", "rome", "oslo", "lima", "cairo", "tokyo", "delhi", "quito")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOTS = ("name", "verb", "object", "place", "day")
SLOT_VALUES = {"name": NAMES, "verb": VERBS, "object": OBJECTS, "place": PLACES, "day": DAYS}
SALIENT_CUE, OTHER_CUE = "key", "note"
FACTS_PER_POST, SALIENT_PER_POST = 4, 2


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


@dataclass
class Post:
    id: str
    facts: list[Fact]
    salient: list[bool]

    def text(self) -> str:
        return " ".join(f"{SALIENT_CUE if s else OTHER_CUE} {f.text()}" for f, s in zip(self.facts, self.salient))

    @property
    def salient_facts(self) -> list[Fact]:
        return [f for f, s in zip(self.facts, self.salient) if s]

    def reference(self) -> str:
        return " ".join(f.text() for f in self.salient_facts)


def generate_posts(count: int, seed: int, prefix: str = "post") -> list[Post]:
    """``count`` posts from a seeded generator; each person appears at most once per post."""
    rng = random.Random(f"facts-world:{seed}:{prefix}")
    posts = []
    for index in range(count):
        names = rng.sample(NAMES, FACTS_PER_POST)
        facts = [Fact(n, rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES), rng.choice(DAYS)) for n in names]
        salient = [True] * SALIENT_PER_POST + [False] * (FACTS_PER_POST - SALIENT_PER_POST)
        rng.shuffle(salient)
        posts.append(Post(id=f"{prefix}-{seed}-{index:05d}", facts=facts, salient=salient))
    return posts


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
    precision: float  # share of stated facts that are true facts of the post
    stated: int


def score_summary(post: Post, summary: str) -> FactScores:
    true = {tuple(f.text()[:-2].split()) for f in post.facts}
    salient = {tuple(f.text()[:-2].split()) for f in post.salient_facts}
    stated = parse_summary(summary)
    found = salient & set(stated)
    correct = sum(1 for span in stated if span in true)
    return FactScores(
        recall=len(found) / len(salient),
        precision=correct / len(stated) if stated else 0.0,
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


@dataclass
class Annotator:
    """Critiques a summary against the post's facts, like a careful but imperfect person.

    ``noise`` is the share of feedback that is unhelpful (vague) or misleading (asks for a fact
    that is not in the post).
    """

    noise: float = 0.1
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"annotator:{self.seed}")

    def critique(self, post: Post, summary: str) -> SimulatedFeedback:
        rng = self._rng
        if rng.random() < self.noise:
            if rng.random() < 0.5:
                return SimulatedFeedback(rng.choice(UNHELPFUL), "unhelpful")
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

    def prefers(self, post: Post, a: str, b: str) -> str:
        """A pairwise judgement: more salient facts, then fewer wrong ones, then closer to the
        salient facts slot by slot (a garbled fact with the right person and object beats noise);
        'tie' if all are equal."""

        def key(summary: str) -> tuple[float, float, float]:
            scores = score_summary(post, summary)
            return scores.recall, scores.precision, slot_overlap(post, summary)

        ka, kb = key(a), key(b)
        return "a" if ka > kb else "b" if kb > ka else "tie"


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
    """A summary with one typical flaw (or none): (text, flaw)."""
    facts = list(post.salient_facts)
    flaw = rng.choices(["none", "drop", "wrong", "extra"], weights=[2, 4, 2, 2])[0]
    if flaw == "drop":
        facts.pop(rng.randrange(len(facts)))
    elif flaw == "wrong":
        index = rng.randrange(len(facts))
        slot = rng.choice(("verb", "object", "place", "day"))
        choices = [v for v in SLOT_VALUES[slot] if v != getattr(facts[index], slot)]
        facts[index] = facts[index].replace(slot, rng.choice(choices))
    elif flaw == "extra":
        others = [f for f, s in zip(post.facts, post.salient) if not s]
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
    for template in MISSING + WRONG + EXTRA + GOOD + UNHELPFUL + PROMPT_WORDS:
        words |= {w for w in template.split() if not w.startswith("{")}
    return sorted(words)


PROMPT_WORDS = ("post : summary : feedback : improved :",)


POLICY_PROMPT = "post : {post} summary :"


def policy_prompt(post: Post) -> str:
    return POLICY_PROMPT.format(post=post.text())


def refine_prompt(post: Post, summary: str, feedback: str | None) -> str:
    if feedback is None:
        return f"post : {post.text()} summary : {summary} improved :"
    return f"post : {post.text()} summary : {summary} feedback : {feedback} improved :"


# ----- posts as records --------------------------------------------------------------------------


def post_record(post: Post) -> dict[str, object]:
    """What a sample keeps of a post besides its text: the facts and which are salient."""
    return {"facts": [[getattr(f, s) for s in SLOTS] for f in post.facts], "salient": list(post.salient)}


def post_from_sample(sample: object) -> Post:
    """The post a facts-world sample was made from (its ``extra`` holds the facts)."""
    extra = getattr(sample, "extra", {}) or {}
    if "facts" not in extra or "salient" not in extra:
        raise ValueError(f"sample {getattr(sample, 'id', '?')!r} is not a facts-world sample (no facts in its extra fields)")
    return Post(id=sample.id, facts=[Fact(*f) for f in extra["facts"]], salient=[bool(s) for s in extra["salient"]])  # type: ignore[attr-defined]
