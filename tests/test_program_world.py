"""The program world's plug-ins: its tasks and held-out split, the weak programmer's
misconceptions, the reviewer, the loader, the feedback sources and the sft_passing method, with
programs run in the real sandbox."""

from __future__ import annotations

import collections
import dataclasses
import random

import pytest

from ilf.config import load_config
from ilf.data import load_eval, load_train, pretrained_world_model
from ilf.demo import program_models, programs
from ilf.execution.programs import run_completions
from ilf.execution.sandbox import Limits, Sandbox
from ilf.feedback.execution_other import derangement


def world_config(*more: str):
    return load_config(None, ["data.loader=program_world", "task.name=code", "feedback.source=reviewer", "data.limit=30", *more])


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout=10))


def test_held_out_tasks_are_split_off_by_the_hash_of_their_program() -> None:
    train = programs.generate_tasks(300, seed=1, held_out=False)
    test = programs.generate_tasks(200, seed=99, held_out=True, prefix="test")
    assert all(t.held_out() for t in test) and not any(t.held_out() for t in train)
    assert len({t.key() for t in test}) == 200  # distinct programs
    assert not {t.program() for t in train} & {t.program() for t in test}
    # pre-training's stream never yields a held-out task
    stream = programs.iter_tasks(seed=3)
    assert not any(next(stream).held_out() for _ in range(500))
    # about a fifth of all tasks is held out
    tasks = [programs.Task(programs._draw_steps(random.Random(i))) for i in range(2000)]
    assert 0.12 < sum(t.held_out() for t in tasks) / len(tasks) < 0.28


def test_each_misconception_is_written_into_the_program_and_fails_its_tests(sandbox: Sandbox) -> None:
    tasks = programs.generate_tasks(400, seed=5, held_out=False)
    seen = collections.Counter()
    pairs, expected = [], []
    for task in tasks:
        for flaw in task.applicable():
            if seen[flaw.kind] >= 3:
                continue
            seen[flaw.kind] += 1
            wrong = task.program(frozenset({flaw}))
            assert wrong != task.program()
            assert programs.read_flaws(task, wrong) == frozenset({flaw})  # the reviewer reads it back
            sample = _sample(task)
            pairs += [(sample, wrong), (sample, task.program())]
            expected += [False, True]
    assert set(seen) == {*programs.MISCONCEPTIONS, programs.READING}  # all eight kinds occur, and the other reading
    results = run_completions(sandbox, pairs)
    assert [r.passed for r in results] == expected, [r.summary() for r in results]
    # the sandbox's message is the one pre-training's examples were written with
    failed = next(r for r, ok in zip(results, expected) if not ok)
    task, flaws = _task_and_flaws(pairs[0])
    assert programs.simulated_execution_feedback(task, flaws) == f"The program fails: {results[0].summary()}"
    assert failed.error.startswith("AssertionError: f ( ")


def _sample(task: programs.Task):
    from ilf.records import Sample

    return Sample(id=task.key()[:8], inputs={"prompt": task.prompt()}, references=[task.program()], extra=programs.task_record(task))


def _task_and_flaws(pair):
    sample, program = pair
    task = programs.task_from_sample(sample)
    return task, programs.read_flaws(task, program)


def test_the_weak_programmer_passes_about_half_and_its_mistakes_are_systematic() -> None:
    rng = random.Random(0)
    tasks = programs.generate_tasks(300, seed=7, held_out=True, prefix="test")
    programmer = programs.Programmer()
    flaws = [programmer.flaws(t, rng) for t in tasks]
    passing = sum(programs.first_failure(t, f) is None for t, f in zip(tasks, flaws)) / len(tasks)
    assert 0.4 < passing < 0.65
    # systematic: the same mistake on about a third of the tasks with its feature, whichever task it is
    for kind in ("min_max", "sub_order", "mod_div", "seven_one"):
        triggered = [fs for t, fs in zip(tasks, flaws) if any(f.kind == kind for f in t.applicable())]
        rate = sum(any(f.kind == kind for f in fs) for fs in triggered) / len(triggered)
        assert 0.2 < rate < 0.5, (kind, rate)
    # a slip is one wrong constant among seven wrong values: no slip repeats like a misconception does
    slips = collections.Counter((f.step, f.constant) for fs in flaws for f in fs if f.kind == programs.SLIP)
    assert sum(slips.values()) < 0.15 * len(tasks)


def test_reviewer_names_one_flaw_in_several_phrasings_with_unhelpful_and_misleading_critiques() -> None:
    tasks = programs.generate_tasks(300, seed=2, held_out=False)
    reviewer = programs.Reviewer(noise=0.2, seed=1)
    rng = random.Random(1)
    programmer = programs.Programmer(misconception=0.9)
    kinds, texts = collections.Counter(), collections.defaultdict(set)
    for task in tasks:
        flaws = programmer.flaws(task, rng)
        critique = reviewer.critique(task, flaws)
        kinds[critique.kind] += 1
        texts[critique.kind].add(critique.text.split()[0])
        if critique.kind in programs.KINDS:
            assert critique.flaw in flaws
            left = programs.apply_critique(flaws, critique)
            assert left == flaws - {critique.flaw}  # only the named flaw is fixed
        elif critique.kind == "misleading":
            assert critique.flaw not in flaws and programs.apply_critique(flaws, critique) == flaws
        elif critique.kind == "good":
            assert not flaws
    noisy = (kinds["unhelpful"] + kinds["misleading"]) / len(tasks)
    assert 0.12 < noisy < 0.28 and kinds["unhelpful"] > 10 and kinds["misleading"] > 10
    assert len(texts["min_max"]) >= 2 and len(texts["sub_order"]) >= 2  # several phrasings of a kind
    assert programs.Reviewer(noise=0.0).critique(tasks[0], None).kind == "other"  # unreadable text: no fix named


def test_refiner_targets_keep_the_mistakes_the_feedback_does_not_name() -> None:
    config = program_models.PretrainConfig(examples=3000, seed=4)
    examples = program_models.training_examples(config)
    policy = [e for e in examples if e["prompt"].startswith("# task")]
    without = [e for e in examples if e["prompt"].startswith("OLD CODE") and "FEEDBACK:" not in e["prompt"]]
    execution = [e for e in examples if "The program fails:" in e["prompt"]]
    assert 0.35 < len(policy) / len(examples) < 0.45 and without and execution
    # without feedback the refiner's target is the program it was given: the mistakes stay
    for example in without:
        old = example["prompt"].split("OLD CODE:\n", 1)[1].split("\n\nREFINEMENT:", 1)[0]
        assert old.endswith(example["completion"].strip())
    tokenizer = program_models.word_tokenizer()
    encoded = tokenizer(policy[0]["completion"])["input_ids"]
    assert tokenizer.decode(encoded) == policy[0]["completion"]  # the body's leading space survives decoding
    assert tokenizer.unk_token_id not in tokenizer(execution[0]["prompt"])["input_ids"]


def test_loader_gives_code_samples_with_a_held_out_set_shared_by_every_seed() -> None:
    config = world_config("data.eval_limit=50")
    train, test = load_train(config).samples, load_eval(config).samples
    assert len(train) == 30 and len(test) == 50
    assert {"test", "entry_point", "steps", "test_inputs"} <= set(train[0].extra)
    assert train[0].inputs["prompt"].endswith("def f ( x ) :") and train[0].references[0].startswith(" return ")
    other = world_config("data.eval_limit=50", "seed=1")
    assert [s.id for s in load_eval(other).samples] == [s.id for s in test]
    assert not {s.id for s in load_train(other).samples} & {s.id for s in test}
    assert {s.id for s in load_train(other).samples} != {s.id for s in train}
    assert pretrained_world_model(config) is program_models.pretrained_model
    assert pretrained_world_model(load_config(None, ["data.loader=facts_world"])).__module__ == "ilf.demo.models"
    # tuning's validation tasks: held out from training, and none of them a task any test set draws
    validation = load_eval(world_config("data.eval_split=validation", "data.eval_limit=100")).samples
    full_test = load_eval(world_config("data.eval_limit=200")).samples
    assert len(validation) == 100 and all(s.id.startswith("validation-") for s in validation)
    assert not {s.extra["test"] for s in validation} & {s.extra["test"] for s in full_test}
    assert not {s.references[0] for s in validation} & {s.references[0] for s in [*full_test, *train]}


def test_derangement_gives_every_program_the_message_of_another() -> None:
    rng = random.Random(0)
    for count in (2, 3, 10):
        order = derangement(count, rng)
        assert sorted(order) == list(range(count)) and all(i != j for i, j in enumerate(order))
    assert derangement(1, rng) == [0]


# ----- conventions the task's text does not state ------------------------------------------------


def test_a_worlds_conventions_change_the_correct_program_and_only_the_cued_text_states_them() -> None:
    both = frozenset(programs.READINGS)
    tasks = [t for t in programs.generate_tasks(300, seed=7, held_out=False) if {s.op for s in t.steps} & both]
    assert tasks
    for task in tasks[:40]:
        plain = programs.Task(task.steps, task.inputs)
        read = programs.Task(task.steps, task.inputs, both)
        cued = programs.Task(task.steps, task.inputs, both, cued=True)
        assert plain.program() != read.program() and plain.key() == read.key()  # the task is the same; its answer is not
        assert plain.prompt() == read.prompt() != cued.prompt()  # only the cued text carries the convention
        # a program written with the other reading is the plain world's correct one, and it is a READING flaw
        flaws = frozenset(programs.Flaw(programs.READING, i) for i, s in enumerate(task.steps) if s.op in both)
        assert read.program(flaws) == plain.program() and read.variants()[programs.normalise(plain.program())] == flaws
    worlds = {programs.draw_readings(seed) for seed in range(12)}
    assert len(worlds) >= 3  # drawn per seed


def test_every_flaw_fails_the_full_tests_in_every_world_but_the_visible_tests_miss_some() -> None:
    missed = caught = 0
    for task in programs.generate_tasks(300, seed=8, held_out=False):
        ops = sorted({s.op for s in task.steps} & set(programs.READINGS))
        for readings in (frozenset(), frozenset(ops)):
            world = programs.Task(task.steps, task.inputs, readings)
            for flaw in world.applicable():
                assert programs.first_failure(world, frozenset({flaw})) is not None, (world.text(), flaw)
                shows = any(
                    programs.evaluate(task.steps, frozenset({flaw}), x, readings) != programs.evaluate(task.steps, frozenset(), x, readings)
                    for x in world.visible_inputs()
                )
                missed, caught = missed + (not shows), caught + shows
    assert missed > 0.05 * (missed + caught) and caught > 0.5 * (missed + caught)  # a selector running the visible tests is no oracle


def test_the_reviewer_names_a_reading_flaw_by_the_reading_the_world_uses() -> None:
    task = next(t for t in programs.generate_tasks(200, seed=9, held_out=False) if t.steps[0].op == "subtract")
    floored = programs.Task(task.steps, task.inputs, frozenset({"subtract"}))
    reviewer = programs.Reviewer(noise=0.0, seed=1)
    wrong = frozenset({programs.Flaw(programs.READING, 0)})
    texts = {reviewer.critique(floored, wrong).text for _ in range(30)}
    c = task.steps[0].constant
    assert texts <= {t.format(c=c) for t in programs.READING_CRITIQUES[("subtract", 1)]} and len(texts) >= 2
    plain = programs.Task(task.steps, task.inputs)
    assert reviewer.critique(plain, wrong).text in {t.format(c=c) for t in programs.READING_CRITIQUES[("subtract", 0)]}


def test_with_training_tests_visible_the_training_side_runs_only_the_visible_tests_and_pass_at_k_all(tmp_path) -> None:
    from ilf.execution.programs import run_training_tests
    from ilf.metrics.code import PassAtK
    from ilf.records import Output
    from ilf.selection.base import SelectionItem
    from ilf.selection.unit_tests import UnitTestsSelector
    from ilf.tasks.code import CodeTask

    for task in programs.generate_tasks(300, seed=8, held_out=False):
        world = programs.Task(task.steps, task.inputs, frozenset(programs.READINGS))
        hidden_only = [
            f
            for f in world.applicable()
            if all(
                programs.evaluate(task.steps, frozenset({f}), x, world.readings)
                == programs.evaluate(task.steps, frozenset(), x, world.readings)
                for x in world.visible_inputs()
            )
        ]
        if hidden_only:
            break
    sample = _sample(world)
    candidates = [world.program(frozenset({hidden_only[0]})), world.program()]
    item = SelectionItem(sample=sample, output="", feedback=None, candidates=candidates)
    every, visible = CodeTask(timeout=5.0), CodeTask(timeout=5.0, training_tests="visible")
    assert UnitTestsSelector(every).score([item]) == [[0.0, 1.0]]  # all the tests: the flawed one fails
    assert UnitTestsSelector(visible).score([item]) == [[1.0, 1.0]]  # the visible ones miss its flaw
    # execution feedback, sft_passing and online rewards run through the same door; the task's reward too
    assert [r.passed for r in run_training_tests(visible, [(sample, candidates[0])])] == [True]
    assert visible.reward([(sample, candidates[0])])[0] == [1.0]
    assert every.reward([(sample, candidates[0])])[0] == [0.0]
    # the execution feedback source, as a run calls it: the visible tests see nothing to say about the flaw
    from types import SimpleNamespace

    from ilf.feedback.execution import ExecutionFeedback
    from ilf.records import write_records

    outputs = tmp_path / "outputs.jsonl"
    write_records(outputs, [Output(sample_id=sample.id, text=candidates[0], system="base")])
    said = {}
    for name, task in (("visible", visible), ("every", every)):
        run = SimpleNamespace(paths=SimpleNamespace(outputs=outputs), samples=lambda: [sample], task=task)
        (record,), _ = ExecutionFeedback().collect(run)
        said[name] = record.text
    assert said["visible"] == "good" and said["every"].startswith("The program fails: AssertionError: f (")
    # pass@k runs every test whatever the training side saw
    metric = PassAtK()
    metric.task = visible
    scores = metric.score_outputs(None, [sample], [Output(sample_id=sample.id, text=candidates[0], system="x")])
    assert scores["pass@1"] == 0.0
    with pytest.raises(ValueError, match="no visible tests"):
        run_training_tests(visible, [(dataclasses.replace(sample, extra={**sample.extra, "visible_test": ""}), candidates[0])])
