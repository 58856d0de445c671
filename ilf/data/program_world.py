"""The program world's tasks as code samples: seeded, so every run of a seed sees the same tasks.

Each sample is what the ``code`` task, the sandbox and pass@k read (``inputs.prompt`` ending in
the signature, ``extra.test`` defining ``check``, ``extra.entry_point``), with the task's steps
beside them for the reviewer. Training tasks are drawn per run seed (``data.limit`` of them) from
the tasks whose correct program hashes outside the held-out fifth; held-out tasks come from
``world.test_seed`` inside it, the same for every run, so runs are compared on one set. The
``validation`` split (for tuning: ``data.eval_split: validation``) is drawn from the same held-out
fifth, leaving out the test split's tasks (the first 200, or ``data.eval_limit`` of them, which
every reported run draws from), so no setting is chosen on the tasks it is reported on. A model
named ``pretrained`` in a run that loads this world is the program world's model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilf import reads
from ilf.data import SplitData
from ilf.demo import program_models, programs
from ilf.records import Sample
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig


TEST_TASKS = 200  # the test split's tasks when data.eval_limit does not say


@LOADERS.register(
    "program_world",
    help="Tasks of the controlled program world (ilf demo code): one-line functions with unit tests; "
    "data.split train, data.eval_split test (reported) or validation (for tuning), no files; held-out tasks split off by "
    "a hash of the program. Its conventions (subtraction floored at 0 or not, division rounding up or down) are drawn "
    "per run seed; world.preference: cued states them in each task's text, hidden does not.",
)
def load_program_world(config: RunConfig, split: str, path: str | None, limit: int | None) -> SplitData:
    reads.note_probe("constant", "ilf.demo.programs:VERSION")  # the world's tasks, as this code draws them
    # the world's conventions, drawn per run seed; the cued world states them in each task's text
    world = {"readings": programs.draw_readings(config.seed), "cued": config.world.preference == "cued"}
    if split == "validation":
        # the held-out fifth holds about 400 tasks: leave out every test set a run draws (up to 200 tasks, or its eval_limit)
        reported = max(TEST_TASKS, config.data.eval_limit or 0)
        test = {t.key() for t in programs.generate_tasks(reported, seed=config.world.test_seed, held_out=True, prefix="test")}
        tasks = programs.generate_tasks(
            limit or 100, seed=config.world.test_seed, held_out=True, prefix="validation", leave_out=test, **world
        )
        prefix = "validation"
    elif split == config.data.eval_split:
        tasks = programs.generate_tasks(limit or TEST_TASKS, seed=config.world.test_seed, held_out=True, prefix="test", **world)
        prefix = "test"
    else:
        tasks = programs.generate_tasks(limit or 100, seed=1000 + config.seed, held_out=False, prefix=split, **world)
        prefix = split
    samples = [
        Sample(id=f"{prefix}-{t.key()[:12]}", inputs={"prompt": t.prompt()}, references=[t.program()], extra=programs.task_record(t))
        for t in tasks
    ]
    return SplitData(samples=samples, origin=f"the program world ({prefix} tasks)")


load_program_world.pretrained_model = program_models.pretrained_model  # type: ignore[attr-defined]
