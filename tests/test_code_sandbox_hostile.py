"""Hostile programs in the pre-warmed sandbox: each ends with a result of its own, nothing outside
changes, nothing one program does reaches the next, and a worker that dies is replaced."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, processes_with

from ilf.execution import pool as pool_module
from ilf.execution.sandbox import Limits, Sandbox, SandboxUnavailable, _uid_pids

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="BUBBLEWRAP IS MISSING (apt-get install bubblewrap)")

LIMITS = Limits(timeout=3.0, memory_mb=512, processes=8)


def test_every_hostile_program_gets_a_result_and_nothing_outside_changes(tmp_path: Path, monkeypatch) -> None:
    tag = f"ilf-hostile-{os.getpid()}"
    secret = Path("/var/tmp") / f"{tag}-secret"  # a path the sandbox's read-only / shows
    secret.write_text("the key")
    secret.chmod(0o600)
    host_tmp = Path("/tmp") / f"{tag}-escaped"
    var_tmp = Path("/var/tmp") / f"{tag}-written"
    monkeypatch.setenv("ILF_TEST_SECRET_TOKEN", "do-not-leak")
    sleeper = f"{8000 + os.getpid() % 1000}.5"
    hostile = {
        "write outside": f"open({str(host_tmp)!r}, 'w').write('x')\nopen({str(var_tmp)!r}, 'w').write('x')\n",
        "dump env": f"import os, json\nopen({str(var_tmp)!r}, 'w').write(json.dumps(dict(os.environ)))\n",
        "env has no secret": "import os\nassert 'ILF_TEST_SECRET_TOKEN' not in os.environ, sorted(os.environ)\n",
        "read secret": f"print(open({str(secret)!r}).read())\n",
        "read ilf's environment": "print(open('/proc/1/environ').read())\n",
        "kill parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "kill everyone": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
        "fork bomb": "import os\nwhile True:\n    os.fork()\n",
        "memory hog": "block = bytearray(8 * 1024 ** 3)\n",
        "infinite loop": "while True:\n    pass\n",
        "network": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n",
        "daemon left behind": f"import os\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '{sleeper}'])\n",
        "huge output": "import sys\nwhile True:\n    sys.stdout.write('x' * 1_000_000)\n",
        "setuid back to root": "import os\nos.setuid(0)\n",
    }
    results = dict(zip(hostile, Sandbox(LIMITS, workers=2).run_many(list(hostile.values()))))
    harmless = ("env has no secret", "daemon left behind", "kill everyone")  # kill(-1) as the uid reaches only the program itself
    assert all(r.status != "passed" or name in harmless for name, r in results.items()), {
        n: (r.status, r.error) for n, r in results.items()
    }
    assert results["env has no secret"].passed
    # /tmp is the sandbox's own, so the first write lands there; / is read-only
    assert results["write outside"].error.startswith("OSError: [Errno 30] Read-only file system")
    assert results["write outside"].line.startswith("open('/var/tmp/")
    assert results["dump env"].error.startswith("OSError: [Errno 30] Read-only file system")
    assert results["read secret"].error.startswith("PermissionError")  # programs run as an unprivileged uid
    assert results["read ilf's environment"].error.startswith("PermissionError")
    assert results["kill parent"].error.startswith("PermissionError")  # the worker is not the program's uid
    assert results["fork bomb"].status in ("failed", "timeout")
    assert results["memory hog"].status == "memory_error"
    assert results["infinite loop"].status == "timeout" and results["infinite loop"].error == "timed out after 3 s"
    assert results["network"].status == "failed" and "Network is unreachable" in results["network"].error
    assert results["huge output"].error.startswith("OSError: [Errno 27] File too large")
    assert results["setuid back to root"].error.startswith("PermissionError")
    assert all(r.isolation == "bwrap" and r.unprivileged for r in results.values())

    assert not host_tmp.exists() and not var_tmp.exists()
    assert secret.read_text() == "the key"
    assert processes_with(sleeper) == [], "a program's daemon outlived it"
    secret.unlink()
    # The workers survived all of it: a program after them runs in the same workers.
    assert Sandbox(LIMITS, workers=2).run("assert 1 + 1 == 2\n").passed


def test_nothing_one_program_does_reaches_the_next(tmp_path: Path) -> None:
    sandbox = Sandbox(LIMITS, workers=1)  # one worker: the two programs run in the same interpreter, one after another
    first = (
        "import sys, json, fractions, os\n"
        "json.dumps = None\n"
        "sys.modules['left_behind'] = sys\n"
        "sys.path.insert(0, '/tmp/planted')\n"
        "open('/tmp/note', 'w').write('from the first program')\n"
        "open(os.path.join(os.getcwd(), 'mine'), 'w').write('x')\n"
        "print(os.getcwd())\n"
    )
    (one,) = sandbox.run_many([first])
    assert one.passed, one
    second = (
        "import sys, json, os\n"
        "assert 'fractions' not in sys.modules and 'left_behind' not in sys.modules\n"
        "assert json.dumps([1]) == '[1]'\n"
        "assert '/tmp/planted' not in sys.path\n"
        "assert not os.path.exists('/tmp/note'), os.listdir('/tmp')\n"
        f"assert not os.path.exists({one.stdout.strip()!r})\n"
        "assert os.listdir(os.getcwd()) == []\n"
    )
    assert sandbox.run(second).passed, sandbox.run(second)


def test_a_worker_that_dies_mid_program_costs_that_program_only() -> None:
    sandbox = Sandbox(Limits(timeout=30.0), workers=1)
    assert sandbox.run("pass\n").passed  # the worker is up
    pool = pool_module.shared_pool(sandbox.plan, 1, sandbox.uid_base)
    slot = pool.slots[0]
    assert slot.process is not None and slot.process.uid is not None
    restarts = pool.restarts
    future = pool.submit("import time\ntime.sleep(25)\n", sandbox.limits)
    deadline = time.monotonic() + 20
    while not _uid_pids(slot.process.uid, running_only=True) and time.monotonic() < deadline:
        time.sleep(0.02)  # until the program runs as the worker's uid
    assert _uid_pids(slot.process.uid, running_only=True), "the program never started"
    os.killpg(slot.process.proc.pid, 9)  # the worker and its sandbox end, as when a program kills its parent
    result = future.result(timeout=20)
    assert result.status == "sandbox_error" and "the sandbox worker ended while this program ran" in result.error
    assert sandbox.run("assert 2 * 2 == 4\n").passed  # a new worker took over
    assert pool.restarts == restarts + 1


def test_programs_run_in_parallel_across_threads_of_the_caller() -> None:
    # Several callers (the select stage and a metric, say) share the workers without mixing verdicts.
    sandbox = Sandbox(LIMITS, workers=2)
    answers: dict[int, list[str]] = {}

    def call(n: int) -> None:
        answers[n] = [r.stdout.strip() for r in sandbox.run_many([f"print({n} * 1000 + {i})\n" for i in range(20)])]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {n: [str(n * 1000 + i) for i in range(20)] for n in range(3)}


REFUSAL_CHECK = """
import sys
from ilf.execution.sandbox import Sandbox, SandboxUnavailable
try:
    Sandbox().run("open('/tmp/ilf-refusal-witness', 'w')\\n")
except SandboxUnavailable as err:
    print("REFUSED", err)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root and a system Python")
def test_as_root_an_interpreter_no_other_uid_can_read_is_refused(tmp_path: Path) -> None:
    venv = tmp_path / "private-venv"
    made = subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"the system Python cannot make a venv: {made.stderr.strip()[-200:]}")
    venv.chmod(0o700)  # what a venv in a private home directory looks like to another uid
    script = tmp_path / "refusal.py"
    script.write_text(REFUSAL_CHECK)
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip()
    assert line.startswith("REFUSED sandbox: refusing to run generated programs as root") and "\n" not in line
    assert "venv other users can read" in line and "unsafe_process" in line
    assert not Path("/tmp/ilf-refusal-witness").exists()


def test_an_unknown_isolation_and_a_missing_bwrap_name_the_fix(monkeypatch) -> None:
    with pytest.raises(ValueError, match="expected one of bwrap, unsafe_process"):
        Sandbox(isolation="docker")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, no bubblewrap
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Sandbox(LIMITS, workers=1).run("pass\n")


KILL_PARENT_CHECK = """
import json, os
from ilf.execution.sandbox import Limits, Sandbox
sandbox = Sandbox(Limits(timeout=5.0, processes=8), workers=1)
first = sandbox.run("import os\\nprint(os.getuid())\\n")
killer = sandbox.run("import os, signal\\nos.kill(os.getppid(), signal.SIGKILL)\\nimport time\\ntime.sleep(3)\\n")
after = sandbox.run("assert 2 + 2 == 4\\n")
print(json.dumps({"drop": sandbox.plan.drop, "uid": first.stdout.strip(), "killer": [killer.status, killer.error], "after": after.status}))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists() or shutil.which("setpriv") is None,
    reason="needs root (to become another user), setpriv and a system Python",
)
def test_as_an_ordinary_user_a_program_that_kills_its_parent_ends_only_its_worker() -> None:
    # An ordinary user's programs share its uid inside a user namespace, so they may signal the
    # worker that forked them; the run must lose that program's verdict only, never ilf.
    folder = Path(tempfile.mkdtemp(prefix="ilf-kill-parent-", dir="/tmp"))  # pytest's own folders are private to root
    folder.chmod(0o755)
    script = folder / "kill_parent.py"
    script.write_text(KILL_PARENT_CHECK)
    script.chmod(0o644)
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", str(script)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(folder)
    if done.returncode != 0 and "SandboxUnavailable" in done.stderr:
        pytest.skip(f"bubblewrap cannot run as an ordinary user here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["drop"] is False and report["uid"] == "65534"
    assert (
        report["killer"][0] == "sandbox_error"
        and "the sandbox worker ended while this program ran (killed by SIGKILL)" in report["killer"][1]
    )
    assert report["after"] == "passed"
