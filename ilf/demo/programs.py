"""A controlled world of small programs, run for real, whose critiques can be simulated.

A task asks for a function of one integer built from one or two operations, in words, and the
program is one line (``# task : take min with 4 then add 3`` / ``def f ( x ) :`` ->
`` return min ( x , 4 ) + 3``). Its unit tests (``check``) call the function on four inputs and
say what it returned when it is wrong (``f ( 13 ) returned 16 , expected 7``); they run in the
real sandbox like any code task's tests.

The world's weak programmer has eight misconceptions, each tied to a feature of the task (min
written as max, the constant 7 written as 1, parentheses dropped before a multiplication, a
subtraction reversed, mod written as floor division, dividing with ``/``, squaring as doubling,
"at least" written as min), and makes a random slip (a wrong constant) now and then. A task carries
the features of zero, one or two of them, so a policy that imitates this programmer passes about
half of the tasks, and a training set of 10 or 30 tasks shows some misconceptions fixed and not
others: the ceiling is not reached at 30 tasks, as it was with three kinds.

The reviewer reads a program against the task and names one problem, in several phrasings per
kind; a share of its critiques is unhelpful ("please fix the code") or misleading (names a
problem the program does not have). The refiner's training targets fix what the feedback names
and keep every other mistake: with correct programs as every target, a refiner without feedback
writes correct programs too (the task's text specifies them), and feedback means nothing.

A world also has conventions its tasks' text does not state (READINGS: whether a subtraction may
go below 0, whether a division rounds down or up), drawn per run seed. The tests and the reviewer
apply them; a program written with the other reading carries a READING flaw, which the reviewer
names by the reading the world uses ("round the division up"). So a correct program needs what
only a critique, or a failing test's message, reveals. The cued form states the conventions in
the task's text (the control). Of a task's four tests the first two are visible: a training side
that runs only those (``task.options.training_tests: visible``) is no oracle of the tests pass@k
runs, as MBPP shows some of its tests.

Held-out tasks are those whose correct program hashes into a fifth of the space, so no training
task, in pre-training or in a study, is a held-out one.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from ilf.execution.programs import execution_feedback
from ilf.execution.sandbox import ExecutionResult

VERSION = 3  # bump when tasks, programs, tests or critiques change: cached world models are retrained

CONSTANTS = tuple(range(2, 10))
OPS = ("add", "subtract", "multiply", "mod", "max", "min", "at_least", "square", "divide")
WITH_CONSTANT = ("add", "subtract", "multiply", "mod", "max", "min", "at_least", "divide")
PHRASES = {
    "add": "add {c}",
    "subtract": "subtract {c}",
    "multiply": "multiply by {c}",
    "mod": "take mod {c}",
    "max": "take max with {c}",
    "min": "take min with {c}",
    "at_least": "make it at least {c}",
    "square": "square it",
    "divide": "divide by {c}",
}
INPUTS = tuple(range(16))
TESTS_PER_TASK = 4
VISIBLE_TESTS = 2  # of a task's tests, those a selector may run (as MBPP shows some of its tests)
HELD_OUT_BUCKETS = 5  # a task is held out when the hash of its program falls in bucket 0 of 5

# Conventions the task's text does not state: how an operation is read. A world (a run seed) draws
# one reading of each; the tests and the reviewer apply it, and a program written with the other
# reading carries a READING flaw at that step. The cued form states the reading in the task's text.
READINGS = {
    "subtract": ("may go below 0", "not below 0"),  # x - c, or max ( x - c , 0 )
    "divide": ("rounding down", "rounding up"),  # x // c, or ( x + c - 1 ) // c
}
READING = "reading"  # the flaw kind: the other reading of a step's operation

# The weak programmer's misconceptions, each with the feature of a task that triggers it.
MISCONCEPTIONS = ("min_max", "seven_one", "parens", "sub_order", "mod_div", "div_float", "square_double", "at_least_min")
SLIP = "slip"  # a constant written wrong, at random: not systematic
KINDS = (*MISCONCEPTIONS, SLIP, READING)

ENTRY_POINT = "f"
PROMPT = "# task : {task}\ndef f ( x ) :"
ASSERT_LINE = "assert got == want , show ( x , got , want )"
TEST = """def show ( x , got , want ) :
    return 'f ( %d ) returned %r , expected %d' % ( x , got , want )


def check ( candidate ) :
    for x , want in ( {cases} ) :
        got = candidate ( x )
        {assert_line}
"""


@dataclass(frozen=True)
class Step:
    op: str
    constant: int | None = None

    def phrase(self, reading: int | None = None) -> str:
        """The step in words; with ``reading`` (0 or 1), the convention stated too (the cued form)."""
        text = PHRASES[self.op].format(c=self.constant)
        return f"{text} , {READINGS[self.op][reading]}" if reading is not None and self.op in READINGS else text


@dataclass(frozen=True)
class Flaw:
    """One mistake in a program: a misconception (``kind`` in MISCONCEPTIONS) at step ``step``,
    or a slip that writes ``constant`` in place of the step's constant."""

    kind: str
    step: int
    constant: int | None = None


@dataclass(frozen=True)
class Task:
    steps: tuple[Step, ...]
    inputs: tuple[int, ...] = ()
    readings: frozenset[str] = frozenset()  # the operations read the second way (READINGS): the world's conventions
    cued: bool = False  # whether the task's text states them

    def text(self) -> str:
        if not self.cued:
            return " then ".join(s.phrase() for s in self.steps)
        return " then ".join(s.phrase(int(s.op in self.readings)) for s in self.steps)

    def prompt(self) -> str:
        return PROMPT.format(task=self.text())

    def program(self, flaws: frozenset[Flaw] = frozenset()) -> str:
        return render(self.steps, flaws, self.readings)

    def key(self) -> str:
        """The task's identity: its steps' correct program under the first readings (so the held-out
        split and a task's tests do not depend on the world's conventions)."""
        return hashlib.sha256(render(self.steps).encode()).hexdigest()

    def visible_inputs(self) -> tuple[int, ...]:
        """The inputs of the tests a selector may run (the first VISIBLE_TESTS, in the tests' order);
        pass@k runs them all."""
        return self.inputs[:VISIBLE_TESTS]

    def held_out(self) -> bool:
        return int(self.key()[:8], 16) % HELD_OUT_BUCKETS == 0

    def test(self, inputs: tuple[int, ...] | None = None) -> str:
        """The tests' ``check``: every input (or those given), against the program under the world's readings."""
        cases = " , ".join(f"( {x} , {evaluate(self.steps, frozenset(), x, self.readings)} )" for x in (inputs or self.inputs))
        return TEST.format(cases=cases, assert_line=ASSERT_LINE)

    def applicable(self) -> list[Flaw]:
        """The misconceptions this task's features trigger, one flaw per triggering step."""
        found = []
        for index, step in enumerate(self.steps):
            before = self.steps[index - 1].op if index else None
            if step.op == "min":
                found.append(Flaw("min_max", index))
            if step.constant == 7:
                found.append(Flaw("seven_one", index))
            if step.op == "multiply" and before in ("add", "subtract"):
                found.append(Flaw("parens", index))
            if step.op == "subtract":
                found.append(Flaw("sub_order", index))
            if step.op == "mod":
                found.append(Flaw("mod_div", index))
            if step.op == "divide":
                found.append(Flaw("div_float", index))
            if step.op == "square":
                found.append(Flaw("square_double", index))
            if step.op == "at_least":
                found.append(Flaw("at_least_min", index))
            if step.op in READINGS:
                found.append(Flaw(READING, index))
        return found

    def slips(self) -> list[Flaw]:
        """Every slip: a step's constant replaced by another (the 7 -> 1 misconception excluded)."""
        return [
            Flaw(SLIP, i, c)
            for i, s in enumerate(self.steps)
            if s.constant is not None
            for c in CONSTANTS
            if c != s.constant and not (s.constant == 7 and c == 1)
        ]

    def variants(self) -> dict[str, frozenset[Flaw]]:
        """Every program the weak programmer can write for this task (any subset of its
        misconceptions, with or without one slip), by its normalised text; the fewest flaws win a tie."""
        found: dict[str, frozenset[Flaw]] = {}
        applicable = self.applicable()
        for size in range(len(applicable) + 1):
            for subset in itertools.combinations(applicable, size):
                for slip in [None, *self.slips()]:
                    flaws = frozenset(subset) | ({slip} if slip is not None else set())
                    if slip is not None and any(f.step == slip.step and f.kind == "seven_one" for f in subset):
                        continue  # a constant is written wrong one way at a time
                    text = normalise(self.program(flaws))
                    if text not in found or len(flaws) < len(found[text]):
                        found[text] = flaws
        return found


def normalise(program: str) -> str:
    return " ".join(program.split())


def _wrap(expr: str, level: int, need: int) -> str:
    return f"( {expr} )" if level < need else expr


# precedence levels of the rendered expression: 0 sum, 1 product, 2 power, 3 atom
def render(steps: tuple[Step, ...], flaws: frozenset[Flaw] = frozenset(), readings: frozenset[str] = frozenset()) -> str:
    """The program's body for these steps under these readings, with the given flaws written in (a
    READING flaw writes the step's other reading)."""
    kinds = {(f.kind, f.step): f for f in flaws}
    expr, level = "x", 3
    for index, step in enumerate(steps):
        second = (step.op in readings) != ((READING, index) in kinds)  # the step is read the second way
        c = step.constant
        if ("seven_one", index) in kinds:
            c = 1
        if (SLIP, index) in kinds:
            c = kinds[(SLIP, index)].constant
        op = step.op
        if op == "add":
            expr, level = f"{expr} + {c}", 0
        elif op == "subtract":
            if ("sub_order", index) in kinds:
                expr, level = f"{c} - {_wrap(expr, level, 1)}", 0
            else:
                expr, level = f"{expr} - {c}", 0
            if second:  # not below 0
                expr, level = f"max ( {expr} , 0 )", 3
        elif op == "multiply":
            inner = expr if ("parens", index) in kinds else _wrap(expr, level, 1)
            expr, level = f"{inner} * {c}", 1
        elif op == "mod":
            sign = "//" if ("mod_div", index) in kinds else "%"
            expr, level = f"{_wrap(expr, level, 1)} {sign} {c}", 1
        elif op == "divide":
            sign = "/" if ("div_float", index) in kinds else "//"
            if second:  # rounding up
                expr, level = f"( {expr} + {c} - 1 ) {sign} {c}", 1
            else:
                expr, level = f"{_wrap(expr, level, 1)} {sign} {c}", 1
        elif op == "square":
            if ("square_double", index) in kinds:
                expr, level = f"{_wrap(expr, level, 1)} * 2", 1
            else:
                expr, level = f"{_wrap(expr, level, 3)} ** 2", 2
        elif op in ("max", "min"):
            name = "max" if op == "min" and ("min_max", index) in kinds else op
            expr, level = f"{name} ( {expr} , {c} )", 3
        elif op == "at_least":
            name = "min" if ("at_least_min", index) in kinds else "max"
            expr, level = f"{name} ( {expr} , {c} )", 3
        else:
            raise ValueError(f"unknown operation {op!r}")
    return f" return {expr}"


def evaluate(steps: tuple[Step, ...], flaws: frozenset[Flaw], x: int, readings: frozenset[str] = frozenset()) -> int | float:
    """What the program with these flaws returns for ``x`` under these readings: the world's own
    programs, computed here so pre-training's execution feedback needs no interpreter per example."""
    return eval(_compiled(steps, flaws, readings), {"__builtins__": {}, "max": max, "min": min}, {"x": x})  # noqa: S307 - the world's own text


@functools.lru_cache(maxsize=1 << 16)
def _compiled(steps: tuple[Step, ...], flaws: frozenset[Flaw], readings: frozenset[str] = frozenset()) -> Any:
    # compiled once per program: drawing tasks evaluates every variant on every input
    return compile(render(steps, flaws, readings).strip()[len("return ") :], "<program world>", "eval")


def _draw_steps(rng: random.Random) -> tuple[Step, ...]:
    count = rng.choice((1, 2, 2))
    steps: list[Step] = []
    while len(steps) < count:
        op = rng.choice(OPS)
        if steps and steps[-1].op == op:
            continue
        steps.append(Step(op, rng.choice(CONSTANTS) if op in WITH_CONSTANT else None))
    return tuple(steps)


@functools.lru_cache(maxsize=1 << 14)
def _draw_inputs(steps: tuple[Step, ...]) -> tuple[int, ...] | None:
    """Four inputs on which every single flaw of the task shows, whatever the world's readings
    (else None: the task is redrawn), so a program with any of them fails its tests; drawn from the
    task alone, so a task always has the same tests. In drawn order: the first VISIBLE_TESTS are
    the visible ones, which need not show every flaw."""
    rng = random.Random(f"program-world:inputs:{steps}")
    task = Task(steps)
    flaws = [*task.applicable(), *task.slips()]
    ops = sorted({s.op for s in steps} & set(READINGS))
    worlds = [frozenset(c) for size in range(len(ops) + 1) for c in itertools.combinations(ops, size)]
    for _ in range(200):
        inputs = tuple(rng.sample(INPUTS, TESTS_PER_TASK))
        if all(
            any(evaluate(steps, frozenset({f}), x, readings) != evaluate(steps, frozenset(), x, readings) for x in inputs)
            for readings in worlds
            for f in flaws
        ):
            return inputs
    return None


def generate_tasks(
    count: int,
    seed: int,
    held_out: bool,
    prefix: str = "prog",
    leave_out: frozenset[str] | set[str] = frozenset(),
    readings: frozenset[str] = frozenset(),
    cued: bool = False,
) -> list[Task]:
    """``count`` distinct tasks of the training side (``held_out`` False) or the held-out side,
    none of whose keys is in ``leave_out`` (the test tasks, for a validation split), under the
    world's ``readings`` (stated in the text when ``cued``)."""
    rng = random.Random(f"program-world:{seed}:{prefix}:{held_out}")
    tasks: list[Task] = []
    seen: set[str] = set(leave_out)
    attempts = 0
    while len(tasks) < count:
        attempts += 1
        if attempts > count * 200:
            raise ValueError(f"program world: only {len(tasks)} distinct {'held-out' if held_out else 'training'} tasks found")
        steps = _draw_steps(rng)
        task = Task(steps)
        if task.held_out() != held_out or task.key() in seen:
            continue
        inputs = _draw_inputs(steps)
        if inputs is None:
            continue
        seen.add(task.key())
        tasks.append(Task(steps, inputs, frozenset(readings), cued))
    return tasks


def draw_readings(seed: int) -> frozenset[str]:
    """A world's conventions: each operation of READINGS read the second way or not, drawn per seed."""
    rng = random.Random(f"program-world:readings:{seed}")
    return frozenset(op for op in sorted(READINGS) if rng.random() < 0.5)


def iter_tasks(seed: int, held_out: bool = False, cued_share: float = 0.0) -> Iterator[Task]:
    """An endless stream of tasks (repeats allowed), for pre-training examples: each under readings
    drawn at random, so a model learns both readings and no world's convention; ``cued_share`` of
    them state their readings in the text."""
    rng = random.Random(f"program-world:stream:{seed}:{held_out}")
    while True:
        steps = _draw_steps(rng)
        task = Task(steps)
        if task.held_out() != held_out:
            continue
        inputs = _draw_inputs(steps)
        if inputs is not None:
            readings = frozenset(op for op in sorted(READINGS) if rng.random() < 0.5)
            yield Task(steps, inputs, readings, rng.random() < cued_share)


# ----- the weak programmer -----------------------------------------------------------------------


@dataclass
class Programmer:
    """Writes a task's program with each of its misconceptions at rate ``misconception`` and one
    slip at rate ``slip``."""

    misconception: float = 0.35
    slip: float = 0.08

    def flaws(self, task: Task, rng: random.Random) -> frozenset[Flaw]:
        flaws = {f for f in task.applicable() if rng.random() < self.misconception}
        slips = [s for s in task.slips() if not any(f.step == s.step and f.kind == "seven_one" for f in flaws)]
        if slips and rng.random() < self.slip:
            flaws.add(rng.choice(slips))
        return frozenset(flaws)


# ----- what a program does on its tests ----------------------------------------------------------


def first_failure(task: Task, flaws: frozenset[Flaw], visible: bool = False) -> tuple[int, int | float, int] | None:
    """(input, returned, expected) of the first test the program fails, in the tests' order (of the
    visible tests only, with ``visible``); None if it passes."""
    for x in task.visible_inputs() if visible else task.inputs:
        got, want = evaluate(task.steps, flaws, x, task.readings), evaluate(task.steps, frozenset(), x, task.readings)
        if got != want:
            return x, got, want
    return None


def simulated_execution_feedback(task: Task, flaws: frozenset[Flaw], visible: bool = False) -> str:
    """The execution feedback source's text for this program, as the sandbox would report it
    (built through the same ``ExecutionResult.summary``), without running an interpreter; from
    the visible tests only with ``visible`` (``task.options.training_tests: visible``)."""
    failure = first_failure(task, flaws, visible)
    if failure is None:
        return execution_feedback(ExecutionResult(status="passed"))
    x, got, want = failure
    error = f"AssertionError: f ( {x} ) returned {got!r} , expected {want}"
    return execution_feedback(ExecutionResult(status="failed", error=error, line=ASSERT_LINE))


def fixed_by_execution(task: Task, flaws: frozenset[Flaw], visible: bool = False) -> frozenset[Flaw]:
    """The flaws that execution feedback reveals: those whose fix alone changes what the program
    returns on the failing input it shows. The refiner's target fixes these."""
    failure = first_failure(task, flaws, visible)
    if failure is None:
        return frozenset()
    x, got, _ = failure
    return frozenset(f for f in flaws if evaluate(task.steps, flaws - {f}, x, task.readings) != got)


# ----- the reviewer ------------------------------------------------------------------------------

CRITIQUES = {
    "min_max": ("use min , not max", "the task asks for the min with {c} but the code takes the max", "max should be min here"),
    "seven_one": ("the constant 1 should be 7", "you wrote 1 where the task says 7", "wrong number : 7 , not 1"),
    "parens": (
        "missing parentheses : multiply the whole value by {c}",
        "operator precedence : put ( ) around the sum before multiplying",
        "only the last number is multiplied by {c} , it should be all of it",
    ),
    "sub_order": (
        "the subtraction is reversed : subtract {c} from the value",
        "it should be value - {c} , not {c} - value",
        "subtract {c} , do not subtract the value from {c}",
    ),
    "mod_div": ("use % for the mod , not //", "take the remainder , not the quotient", "mod {c} means % {c} here"),
    "div_float": (
        "use // to divide , / gives a float",
        "the result must be a whole number : divide by {c} with //",
        "integer division is needed",
    ),
    "square_double": ("square means ** 2 , not * 2", "you doubled it instead of squaring", "raise it to the power 2"),
    "at_least_min": (
        "at least {c} means max , not min",
        "use max ( ... , {c} ) to keep it at least {c}",
        "min makes it at most {c} , the task says at least",
    ),
    SLIP: ("the constant should be {c} , not {w}", "{w} is the wrong number , use {c}", "check the numbers : {c} instead of {w}"),
}
# a READING flaw's critique says which reading is meant: by the operation and the reading the world uses
READING_CRITIQUES = {
    ("subtract", 1): ("the result must not go below 0 : use max ( ... , 0 )", "clamp it at 0 after subtracting {c}", "never below 0 here"),
    ("subtract", 0): ("it may go below 0 , do not clamp it", "subtract {c} without max ( ... , 0 )", "negative values are fine here"),
    ("divide", 1): ("round the division up", "divide by {c} rounding up : ( ... + {c} - 1 ) // {c}", "the division must round up"),
    ("divide", 0): ("round the division down , plain //", "divide by {c} rounding down", "do not round up , use // {c}"),
}
GOOD = ("looks good", "the code is correct", "nothing to fix")
UNHELPFUL = ("this is not right", "please fix the code", "something is off here", "hmm , try again")
OTHER = ("the code does not do what the task asks", "this is not the function the task describes")


@dataclass
class Critique:
    text: str
    kind: str  # a flaw kind (it names that flaw), good, unhelpful, misleading, other
    flaw: Flaw | None = None  # the flaw it names (None for good, unhelpful, other; an absent flaw for misleading)

    def record(self) -> dict[str, object]:
        flaw = self.flaw
        return {"kind": self.kind, "flaw": None if flaw is None else [flaw.kind, flaw.step, flaw.constant]}


def critique_text(task: Task, flaw: Flaw, rng: random.Random) -> str:
    step = task.steps[flaw.step] if flaw.step < len(task.steps) else None
    right = step.constant if step is not None and step.constant is not None else rng.choice(CONSTANTS)
    wrong = flaw.constant if flaw.constant is not None else rng.choice([c for c in CONSTANTS if c != right])
    if flaw.kind == READING:
        op = step.op if step is not None and step.op in READINGS else rng.choice(sorted(READINGS))
        return rng.choice(READING_CRITIQUES[(op, int(op in task.readings))]).format(c=right)
    return rng.choice(CRITIQUES[flaw.kind]).format(c=right, w=wrong)


@dataclass
class Reviewer:
    """Names one problem of a program. ``noise`` is the share of critiques that are unhelpful
    (half) or misleading (half: a problem of a kind the program does not have)."""

    noise: float = 0.15
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"reviewer:{self.seed}")

    def critique(self, task: Task, flaws: frozenset[Flaw] | None) -> Critique:
        """``flaws`` of the program as the reviewer reads them; None for a program it cannot read
        as an attempt at the task (garbled text): it says so, without naming a fix."""
        rng = self._rng
        if rng.random() < self.noise:
            if rng.random() < 0.5:
                return Critique(rng.choice(UNHELPFUL), "unhelpful")
            absent = self._absent(task, flaws or frozenset())
            return Critique(critique_text(task, absent, rng), "misleading", absent)
        if flaws is None:
            return Critique(rng.choice(OTHER), "other")
        if not flaws:
            return Critique(rng.choice(GOOD), "good")
        flaw = rng.choice(sorted(flaws, key=lambda f: (f.step, f.kind)))
        return Critique(critique_text(task, flaw, rng), flaw.kind, flaw)

    def _absent(self, task: Task, flaws: frozenset[Flaw]) -> Flaw:
        present = {f.kind for f in flaws}
        kind = self._rng.choice([k for k in MISCONCEPTIONS if k not in present])
        return Flaw(kind, self._rng.randrange(len(task.steps)))


def apply_critique(flaws: frozenset[Flaw], critique: Critique) -> frozenset[Flaw]:
    """The flaws left after a refiner that does what the critique says: the named flaw goes,
    every other stays (vague, misleading and 'good' critiques change nothing)."""
    if critique.flaw is not None and critique.flaw in flaws:
        return flaws - {critique.flaw}
    return flaws


# ----- prompts of pre-training (the code task's own templates) -----------------------------------

REFINE = "OLD CODE:\n{old_code}\n\nFEEDBACK:\n{feedback}\n\nREFINEMENT:\n{prompt}"
REFINE_WITHOUT_FEEDBACK = "OLD CODE:\n{old_code}\n\nREFINEMENT:\n{prompt}"


def refine_prompt(task: Task, program: str, feedback: str | None) -> str:
    """The code task's refinement prompt (its default templates), for pre-training's examples."""
    old_code = (task.prompt() + program).rstrip()
    if feedback is None:
        return REFINE_WITHOUT_FEEDBACK.format(old_code=old_code, prompt=task.prompt())
    return REFINE.format(old_code=old_code, feedback=feedback, prompt=task.prompt())


def vocabulary() -> list[str]:
    """Every word the world's prompts, programs, tests' messages and critiques can hold."""
    words: set[str] = set()
    texts = [PROMPT, REFINE, REFINE_WITHOUT_FEEDBACK, *GOOD, *UNHELPFUL, *OTHER, *(t for ts in CRITIQUES.values() for t in ts)]
    texts += [t for ts in READING_CRITIQUES.values() for t in ts]
    texts += [PHRASES[op] for op in OPS] + [r for rs in READINGS.values() for r in rs]
    texts += [
        " return x + - * ** % // / max min ( ) , 1 2 then",
        execution_feedback(ExecutionResult(status="failed", error="AssertionError: f ( 1 ) returned 1 , expected 1", line=ASSERT_LINE)),
        execution_feedback(ExecutionResult(status="passed")),
    ]
    for text in texts:
        words |= {w for w in text.split() if not ("{" in w and "}" in w)}
    # what the tests' messages can show: inputs, expected and returned values (larger or fractional ones are unknown words)
    numbers = {str(n) for n in range(-100, 301)} | {repr(n / 2) for n in range(-21, 41, 2)}
    return sorted(words | numbers)


# ----- tasks as records --------------------------------------------------------------------------


def task_record(task: Task) -> dict[str, object]:
    """What a sample keeps of a task besides its prompt: the steps, the world's readings, the test
    inputs, the tests (all of them, which pass@k runs) and the visible ones (which a selector may run)."""
    return {
        "steps": [[s.op, s.constant] for s in task.steps],
        "readings": sorted(task.readings),
        "cued": task.cued,
        "test_inputs": list(task.inputs),  # not "inputs": a sample's own field of that name holds its prompt
        "test": task.test(),
        "visible_test": task.test(task.visible_inputs()),
        "entry_point": ENTRY_POINT,
    }


def task_from_sample(sample: object) -> Task:
    """The task a program-world sample was made from (its ``extra`` holds the steps)."""
    extra = getattr(sample, "extra", {}) or {}
    if "steps" not in extra or "test_inputs" not in extra:
        raise ValueError(f"sample {getattr(sample, 'id', '?')!r} is not a program-world sample (no steps in its extra fields)")
    return Task(
        tuple(Step(op, constant) for op, constant in extra["steps"]),
        tuple(extra["test_inputs"]),
        frozenset(extra.get("readings") or ()),
        bool(extra.get("cued", False)),
    )


def read_flaws(task: Task, program: str) -> frozenset[Flaw] | None:
    """The flaws of a program as the reviewer reads it: which of the weak programmer's variants
    it is (the empty set: the correct program), or None for any other text."""
    return task.variants().get(normalise(program))
