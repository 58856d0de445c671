"""The sandbox runs real programs in real subprocesses (under bubblewrap where it is installed):
verdicts, limits, isolation, the cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, processes_with

from ilf.execution import sandbox as sandbox_module
from ilf.execution.sandbox import ExecutionResult, Limits, Sandbox, SandboxUnavailable, build_program

HAVE_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason="BUBBLEWRAP IS MISSING (apt-get install bubblewrap): isolation tests skipped")

DOUBLE = "def double(x):\n    return x * 2\n"
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"


def program(body: str, test: str = TEST) -> str:
    return build_program("def double(x):\n", body, test, "double")


def wait_until_gone(marker: str, seconds: float = 3.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout=2.0, memory_mb=512, processes=8))


@pytest.fixture(scope="module")
def plain() -> Sandbox:
    return Sandbox(Limits(timeout=2.0, memory_mb=512, processes=8), isolation="unsafe_process")


def test_a_passing_program_passes_and_records_its_isolation(sandbox: Sandbox) -> None:
    result = sandbox.run(program("    return x * 2\n"))
    assert result.passed and result.status == "passed" and result.summary() == "passed"
    assert result.isolation == "bwrap"
    assert result.seconds < 2.0


def test_a_failing_assertion_is_named_with_its_text(sandbox: Sandbox) -> None:
    result = sandbox.run(program("    return x + 2\n"))  # right for 2, wrong for -1
    assert result.status == "failed"
    assert result.error == "AssertionError"
    assert result.line == "assert candidate(-1) == -2"
    assert result.summary() == "AssertionError at `assert candidate(-1) == -2`"


def test_an_error_inside_the_function_names_the_test_that_called_it(sandbox: Sandbox) -> None:
    result = sandbox.run(program("    return x / 0\n"))
    assert result.error == "ZeroDivisionError: division by zero"
    assert result.line == "return x / 0" and result.test == "assert candidate(2) == 4"
    assert "in the test `assert candidate(2) == 4`" in result.summary()


def test_pytest_approx_is_importable_and_output_is_kept(sandbox: Sandbox) -> None:
    test = "from pytest import approx\n\ndef check(candidate):\n    print('checking')\n    assert candidate(0.1) == approx(0.2)\n"
    result = sandbox.run(program("    return x * 2\n", test))
    assert result.passed, result
    assert result.stdout == "checking\n"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("    import sys\n    sys.exit(0)\n", "SystemExit(0): the program exited before its tests finished"),
        ("    import os\n    os._exit(0)\n", "exited with code 0 before its tests finished"),
    ],
)
def test_exiting_early_with_success_does_not_pass(sandbox: Sandbox, body: str, expected: str) -> None:
    result = sandbox.run(program(body))
    assert result.status == "failed" and result.error == expected


def test_the_parents_environment_does_not_reach_the_program(sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("ILF_TEST_SECRET_TOKEN", "do-not-leak")
    result = sandbox.run("import os\nassert 'ILF_TEST_SECRET_TOKEN' not in os.environ, sorted(os.environ)\n")
    assert result.passed, result


@pytest.mark.parametrize("executor", ["warm", "spawn"])
@pytest.mark.parametrize("isolation", ["bwrap", "unsafe_process"])
def test_an_infinite_loop_is_killed_within_the_limit_with_its_process_group(isolation: str, executor: str) -> None:
    if isolation == "bwrap" and not HAVE_BWRAP:
        pytest.skip("BUBBLEWRAP IS MISSING")
    marker = f"{4000 + os.getpid() % 1000}.{len(isolation)}{len(executor)}5"  # a sleep nobody else runs
    source = (
        f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n\n"
        "def spin(x):\n    while True:\n        pass\n\n"
        "def check(candidate):\n    assert candidate(1) == 2\n\n"
        "check(spin)\n"
    )
    started = time.monotonic()
    result = Sandbox(Limits(timeout=1.5), isolation=isolation, executor=executor).run(source)
    assert result.status == "timeout"
    assert result.error == "timed out after 1.5 s"
    assert 1.5 <= result.seconds < 2.5 and time.monotonic() - started < 3.0
    assert result.line in ("while True:", "pass") and result.test == "assert candidate(1) == 2"  # where it was when the limit came
    assert wait_until_gone(marker) == [], "the program's child outlived it"


@needs_bwrap
def test_a_child_that_leaves_the_process_group_dies_with_the_sandbox(sandbox: Sandbox) -> None:
    marker = f"{7000 + os.getpid() % 1000}.25"
    source = f"import os\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
    assert sandbox.run(source).passed
    assert wait_until_gone(marker) == [], "a child in a session of its own outlived the sandbox"


def test_a_memory_hog_is_stopped() -> None:
    # A wall-clock limit well above what touching 512 MB takes on a loaded machine: the memory limit must be what stops it.
    sandbox = Sandbox(Limits(timeout=20.0, memory_mb=512, processes=8))
    at_once = sandbox.run("block = bytearray(8 * 1024 ** 3)\n")
    assert at_once.status == "memory_error" and at_once.summary() == "MemoryError at `block = bytearray(8 * 1024 ** 3)`"
    growing = sandbox.run("chunks = []\nwhile True:\n    chunks.append(b'x' * 10 ** 7)\n")
    assert growing.status == "memory_error" and growing.line == "chunks.append(b'x' * 10 ** 7)"


def test_output_beyond_the_file_size_limit_fails_the_program() -> None:
    limited = Sandbox(Limits(timeout=5.0, file_size_mb=1))
    result = limited.run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 100_000)\n    sys.stdout.flush()\n")
    assert result.status == "failed" and result.error.startswith("OSError: [Errno 27] File too large")


def test_a_fork_bomb_is_limited(sandbox: Sandbox) -> None:
    if sandbox.plan.isolation == "unsafe_process" and os.geteuid() == 0 and not sandbox.plan.drop:
        pytest.skip("programs run as root here, and the kernel never limits root's processes")
    marker = f"{5000 + os.getpid() % 1000}.75"
    source = (
        "import os\n"
        "children = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        f"            os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "        children += 1\n"
        "except OSError as err:\n"
        "    raise AssertionError(f'forked {children} children, then {type(err).__name__}')\n"
    )
    result = sandbox.run(source)
    assert result.status == "failed", result
    assert result.error.startswith("AssertionError: forked ") and result.error.endswith("children, then BlockingIOError")
    children = int(result.error.split()[2])
    assert 0 < children < sandbox.limits.processes
    assert wait_until_gone(marker) == [], "forked children outlived the program"


def test_a_true_fork_bomb_ends_and_leaves_nothing_behind(sandbox: Sandbox) -> None:
    if sandbox.plan.isolation == "unsafe_process" and os.geteuid() == 0 and not sandbox.plan.drop:
        pytest.skip("programs run as root here, and the kernel never limits root's processes")
    marker = f"{6000 + os.getpid() % 1000}.5"
    source = (
        f"import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
    )
    result = sandbox.run(source)
    assert not result.passed
    assert result.seconds < sandbox.limits.timeout + 1.0
    assert wait_until_gone(marker) == []


@needs_bwrap
def test_writes_outside_tmp_are_refused_under_bwrap(sandbox: Sandbox) -> None:
    assert sandbox.plan.isolation == "bwrap"
    target = Path("/etc/ilf-sandbox-write-test")
    source = f"open('/tmp/scratch', 'w').write('fine')\nopen({str(target)!r}, 'w').write('escaped')\n"
    result = sandbox.run(source)
    assert result.status == "failed"
    assert result.error.startswith(("OSError: [Errno 30] Read-only file system", "PermissionError"))
    assert result.line == f"open({str(target)!r}, 'w').write('escaped')"
    assert not target.exists()


def listening_socket() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


CONNECT = "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"


@needs_bwrap
def test_network_connections_are_refused_under_bwrap(sandbox: Sandbox, plain: Sandbox) -> None:
    with listening_socket() as server:
        port = server.getsockname()[1]
        inside = sandbox.run(CONNECT.format(port=port))
        outside = plain.run(CONNECT.format(port=port))
    assert inside.status == "failed" and inside.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert outside.passed, "without bubblewrap the same program reaches the listener: the test above means something"


def test_a_cache_hit_returns_the_same_result_without_running(tmp_path: Path) -> None:
    first = Sandbox(Limits(timeout=5.0), cache_dir=tmp_path / "cache")
    failing = program("    return x + 2\n")
    slow_pass = "import time\ntime.sleep(0.5)\n" + program("    return x * 2\n")
    results = first.run_many([failing, slow_pass, failing])
    assert first.launched == 2  # the same program twice in one batch runs once
    assert [r.status for r in results] == ["failed", "passed", "failed"]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2

    second = Sandbox(Limits(timeout=5.0), cache_dir=tmp_path / "cache")  # a new process would see only the files
    started = time.monotonic()
    again = second.run_many([failing, slow_pass])
    assert time.monotonic() - started < 0.4 and second.launched == 0
    assert all(r.cached for r in again)
    assert [r.to_dict() for r in again] == [results[0].to_dict(), results[1].to_dict()]

    other_limits = Sandbox(Limits(timeout=6.0), cache_dir=tmp_path / "cache")
    other_limits.run(failing)
    assert other_limits.launched == 1  # the limits are part of the key


def test_timeouts_are_not_written_to_the_cache(tmp_path: Path) -> None:
    sandbox = Sandbox(Limits(timeout=0.5), cache_dir=tmp_path)
    assert sandbox.run("while True:\n    pass\n").status == "timeout"
    assert list(tmp_path.rglob("*.json")) == []


def test_without_bwrap_programs_are_refused_unless_unsafe_process_is_asked_for_by_name(monkeypatch, caplog, tmp_path) -> None:
    monkeypatch.setattr(sandbox_module, "_warned", set())
    monkeypatch.setenv("PATH", "/nonexistent")  # bubblewrap is installed, but this process cannot find it
    witness = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable) as refused:
        Sandbox(Limits(timeout=5.0)).run(f"open({str(witness)!r}, 'w').write('ran')\n")
    message = str(refused.value)
    assert "\n" not in message and "apt-get install bubblewrap" in message and "task.options.isolation: unsafe_process" in message
    assert not witness.exists(), "a program ran although the sandbox was refused"
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        Sandbox(isolation="auto").run("pass\n")  # the old default's name means the sandbox, never a fallback
    with pytest.raises(ValueError, match="'process' was renamed 'unsafe_process'"):
        Sandbox(isolation="process")
    with caplog.at_level(logging.WARNING, logger="ilf.execution.sandbox"):
        result = Sandbox(Limits(timeout=5.0), isolation="unsafe_process").run(program("    return x * 2\n"))
    assert result.passed and result.isolation == "unsafe_process"
    assert any("SANDBOX ISOLATION IS OFF" in r.getMessage() for r in caplog.records)


def test_the_pool_runs_programs_in_parallel() -> None:
    sandbox = Sandbox(Limits(timeout=5.0), workers=4)
    sandbox.run("pass\n")  # settle the plan first
    started = time.monotonic()
    results = sandbox.run_many([f"import time\ntime.sleep(1.0)\nvalue = {i}\n" for i in range(4)])
    assert all(r.passed for r in results)
    assert time.monotonic() - started < 2.5  # four one-second sleeps, not one after another


def test_results_round_trip_through_their_dict() -> None:
    result = ExecutionResult(status="failed", error="AssertionError", line="assert f(1) == 2", isolation="bwrap", seconds=0.1)
    assert ExecutionResult.from_dict(result.to_dict()) == result
    assert ExecutionResult.from_dict(result.to_dict(), cached=True).cached


UNPRIVILEGED_CHECK = """
import json, os, sys
from ilf.execution.sandbox import Limits, Sandbox, _uid_pids
sandbox = Sandbox(Limits(timeout=3.0, processes=8), isolation="unsafe_process")
if not sandbox.plan.drop:
    print(json.dumps({"skip": "this interpreter is not reachable by other users"}))
    sys.exit(0)
whoami = sandbox.run("import os\\nprint(os.getuid())\\n")
bomb = sandbox.run(
    "import os\\nchildren = 0\\ntry:\\n    while True:\\n        if os.fork() == 0:\\n            os.setsid()\\n"
    "            os.execv('/bin/sleep', ['sleep', '300'])\\n        children += 1\\n"
    "except OSError as err:\\n    raise AssertionError(f'forked {children}')\\n"
)
uid = int(whoami.stdout)
etc = sandbox.run("open('/etc/ilf-sandbox-write-test', 'w')\\n")
print(json.dumps({"uid": uid, "whoami": whoami.status, "bomb": bomb.error, "running": _uid_pids(uid, running_only=True), "etc": etc.error}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root and a system Python")
def test_without_bwrap_root_runs_programs_as_an_unprivileged_uid(tmp_path: Path) -> None:
    # This suite's interpreter may sit where other users cannot go (a pyenv under /root); the
    # system's Python can be reached, so the sandbox drops to an unprivileged uid even without
    # bubblewrap. The sandbox needs nothing beyond the standard library, so that Python runs it.
    script = tmp_path / "check.py"
    script.write_text(UNPRIVILEGED_CHECK)
    done = subprocess.run(
        ["/usr/bin/python3", str(script)],
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(report["skip"])
    assert report["whoami"] == "passed" and report["uid"] >= sandbox_module.DEFAULT_UID_BASE
    assert report["bomb"].startswith("AssertionError: forked ") and int(report["bomb"].split()[-1]) < 8
    assert report["running"] == [], "children in sessions of their own outlived the program"
    assert report["etc"].startswith("PermissionError")


def test_an_environment_inside_tmp_is_bound_back_into_the_private_tmp(monkeypatch) -> None:
    from ilf.execution import sandbox as sandbox_module

    tmp = Path("/tmp").resolve()
    venv = tmp / "checkout" / ".venv"
    monkeypatch.setattr(sandbox_module, "_interpreter_paths", lambda: [Path("/usr/lib/python3"), venv, venv / "lib"])
    args = sandbox_module._bwrap_args("bwrap", [], root=False, drop=False)
    text = " ".join(args)
    assert text.index(f"--tmpfs {tmp}") < text.index(f"--dir {tmp / 'checkout'}") < text.index(f"--ro-bind {venv} {venv}")
    assert f"--ro-bind {venv / 'lib'}" not in text  # inside a path already bound
    assert "--ro-bind /usr/lib/python3" not in text  # outside /tmp the read-only root already shows it
