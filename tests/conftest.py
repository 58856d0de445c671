"""Shared fixtures: everything offline, tiny models, small SLF5K-layout files written per test."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The same numbers on every machine: `dtype: auto` would sample in bfloat16 only on CPUs measured
# faster in it, and tests compare weights and log-probabilities exactly. The measured choice itself
# is tested in test_precision.py, which clears this.
os.environ.setdefault("ILF_CPU_DTYPE", "float32")

REPO = Path(__file__).resolve().parent.parent

PEOPLE = ["my sister", "my roommate", "my boss", "my neighbor", "my partner", "my cousin", "my teacher", "my friend"]
PROBLEMS = [
    ("borrowed {n} dollars and will not pay it back", "money"),
    ("keeps parking in my spot every night", "parking"),
    ("wants me to work {n} extra hours for free", "overtime"),
    ("read my diary while I was away", "privacy"),
    ("forgot my birthday for the {n}th time", "birthday"),
    ("sold my bike without asking", "bike"),
]


def slf5k_row(index: int, split: str = "train") -> dict:
    """One row in the SLF5K field layout; every row differs in person, problem and number."""
    person = PEOPLE[index % len(PEOPLE)]
    problem, topic = PROBLEMS[(index // len(PEOPLE)) % len(PROBLEMS)]
    n = 3 + index
    event = problem.format(n=n)
    title = f"{person.capitalize()} {event.split(' and ')[0]}; what should I do? ({index})"
    post = (
        f"I (25F) need advice. {person.capitalize()} {event}. This has gone on for {n} weeks and I "
        f"have tried to talk about it calmly. Should I confront them about the {topic} or let it go?"
    )
    good = f"{person.capitalize()} {event} for {n} weeks and I want to know whether to confront them."
    return {
        "id": f"{split}-{index:04d}",
        "subreddit": "relationships",
        "title": title,
        "post": post,
        "summary_prompt": f"Title: {title}\n\nText: {post}\n\nTL;DR:",
        "generated_summary_for_feedback": f"Someone has a problem with {person}.",
        "feedback": f"The summary is vague: it should say that {person} {event} and that I ask whether to confront them.",
        "feedback_class": "coverage",
        "ideal_human_summary": good,
        "tldr_human_reference_summary": f"{person.capitalize()} {event}; should I confront them about the {topic}?",
        "generated_summary_for_comparison_A": good,
        "generated_summary_for_comparison_B": f"Someone has a problem with {person}.",
        "comparison_preference": "Summary A" if index % 2 == 0 else "Summary B",
        "time_spent_in_seconds_feedback": 100 + index,
        "time_spent_in_seconds_ideal_human_summary": 200,
        "time_spent_in_seconds_comparison": 30,
    }


SQUARES_PROMPT = (
    '"""\nWrite a function to return the sum of the squares of a list of numbers.\n\n'
    '>>> Example: sum_squares([1, 2]) = 5\n"""\n\nimport math\nSCALE = 1\ndef sum_squares(xs):\n'
)
EVEN_PROMPT = (
    '"""\nWrite a python function to check whether a number is even.\n"""\n\ndef helper(n):\n    return n % 2\n\ndef is_even(n):\n'
)


def ilf_code_rows() -> list[dict]:
    """Two rows in the ILF-for-code annotation layout: the critiqued program includes the prompt, the
    refinement is the body only, text has Windows line endings, tests use tabs and approx."""
    return [
        {
            "task_id": 7001,
            "prompt": SQUARES_PROMPT,
            "test": (
                "from pytest import approx\n\ndef check(candidate):\n"
                '\tassert candidate([1, 2]) ==approx( 5), "candidate([1, 2]) ==approx( 5)"\n'
                '\tassert candidate([0.5]) ==approx( 0.25), "candidate([0.5]) ==approx( 0.25)"'
            ),
            "Feedback": "The code squares the sum instead of summing the squares.\r\nSquare each number first.",
            "completion": "\n    \n    return sum(x * x for x in xs)\r\n",
            "result": "passed",
            "passed": True,
            "unedited_annotator_completion": SQUARES_PROMPT + "    \n    return sum(x * x for x in xs)\r\n",
            "original_model_completion": SQUARES_PROMPT + "    return sum(xs) ** 2\n\n\n",
            "refinement_edit_distance": 0.31,
            "worker_id": None,
        },
        {
            "task_id": 7002,
            "prompt": EVEN_PROMPT,
            "test": 'def check(candidate):\n\tassert candidate(4) == True, "candidate(4) == True"\n\tassert candidate(3) == False, "candidate(3) == False"',
            "Feedback": "It returns True for odd numbers: the comparison is reversed.",
            "completion": "\n    return helper(n) == 0",
            "result": "passed",
            "passed": True,
            "unedited_annotator_completion": EVEN_PROMPT + "    return helper(n) == 0",
            "original_model_completion": EVEN_PROMPT + "    return helper(n) == 1\n",
            "refinement_edit_distance": 0.05,
            "worker_id": "w17",
        },
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def slf5k_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "slf5k"
    write_jsonl(folder / "train.jsonl", [slf5k_row(i, "train") for i in range(24)])
    test_rows = [slf5k_row(i, "test") for i in range(100, 110)]
    for row in test_rows:
        row["feedback"] = ""  # like SLF5K's test split, references without feedback
    write_jsonl(folder / "test.jsonl", test_rows)
    return folder


def code_round_sets(annotations: Path) -> list[str]:
    """A code round on ILF-for-code rows: execution feedback, the unit_tests selector, pass@k."""
    return [
        "task.name=code",
        "task.options={timeout: 5, include_test_output: true}",
        "data.loader=ilf_code",
        f"data.path={annotations}",
        "feedback.source=execution",
        "selection.method=unit_tests",
        "evaluation.metrics=[pass_at_k]",
        "refine.num_candidates=2",
        "refine.sampling.max_new_tokens=8",
    ]


def small_run_overrides(data_path: Path, limit: int = 8, eval_limit: int = 6) -> list[str]:
    """Overrides that shrink experiments/offline.yaml to seconds-long test runs."""
    return [
        f"data.path={data_path}",
        f"data.limit={limit}",
        f"data.eval_limit={eval_limit}",
        "refine.num_candidates=3",
        "refine.sampling.max_new_tokens=12",
        "refine.sampling.max_resamples=1",
        "refine.sampling.batch_size=4",
        "evaluation.sampling.max_new_tokens=12",
        "finetune.num_train_epochs=1",
    ]


# ----- a real Label Studio server, started once per test session -----------------------------


def _loud(message: str) -> None:
    banner = "!" * 78
    print(f"\n{banner}\n{message}\n{banner}", flush=True)
    import warnings

    warnings.warn(message, stacklevel=2)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Chromium driven by Playwright: Debian's, else the one ``playwright install chromium``
    downloads; the module's tests skip loudly only when neither starts."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _loud(f"PLAYWRIGHT IS NOT INSTALLED; the browser tests are SKIPPED: {err}")
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        executable = CHROMIUM if Path(CHROMIUM).exists() else None
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        except Exception as err:  # playwright raises its own Error when no browser is installed
            if executable:
                raise
            _loud(f"CHROMIUM IS NOT INSTALLED (apt-get install chromium); the browser tests are SKIPPED: {err}")
            pytest.skip("chromium is not installed")
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    """A Label Studio server on a free loopback port, started with `ilf labelstudio serve` and
    stopped with `ilf labelstudio stop`. Skips (loudly) only if the server cannot be installed."""
    import subprocess
    import sys

    from ilf.labelstudio.server import Credentials, ServerError, ServerInfo, free_port, install_server

    try:
        install_server()
    except (ServerError, OSError, subprocess.CalledProcessError) as err:
        message = f"LABEL STUDIO COULD NOT BE INSTALLED; every test that needs the server is SKIPPED: {err}"
        if os.environ.get("ILF_REQUIRE_LABEL_STUDIO"):
            pytest.fail(message)
        _loud(message)
        pytest.skip(message)
    data_dir = tmp_path_factory.mktemp("labelstudio")
    port = free_port()
    command = [sys.executable, "-m", "ilf", "labelstudio", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    started = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert started.returncode == 0, started.stderr[-3000:]
    creds = Credentials.load_or_create(data_dir)
    assert creds.token not in started.stdout + started.stderr  # the key is never printed in full
    info = ServerInfo.read(data_dir)
    yield {"url": info.url, "data_dir": data_dir, "creds": creds, "serve_output": started.stdout}
    subprocess.run([sys.executable, "-m", "ilf", "labelstudio", "stop", "--data-dir", str(data_dir)], timeout=60)


@pytest.fixture
def ls_client(label_studio):
    from ilf.labelstudio.client import Connection, LabelStudio

    return LabelStudio(Connection(label_studio["url"], label_studio["creds"].token))


@pytest.fixture
def project_title(request) -> str:
    """A project title no other test uses."""
    import uuid

    return f"{request.node.name[5:30]}-{uuid.uuid4().hex[:6]}"  # titles are capped at 50 characters


# ----- a real `transformers serve` on loopback, serving a tiny saved model ---------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """``transformers serve`` pinned to a tiny gpt2 on a free port; skips loudly only if its packages are missing."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    import torch
    from transformers.utils.import_utils import is_serve_available

    from ilf.labelstudio.server import free_port
    from ilf.models import save_model, tiny_model

    if not is_serve_available():
        message = "TRANSFORMERS SERVE IS NOT INSTALLED (pip install -e '.[test]'); every openai-backend test is SKIPPED"
        _loud(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("served")
    model, tokenizer = tiny_model("gpt2", seed=3)
    # Freshly initialised weights give near-uniform logits and one greedy text for every prompt;
    # larger weights make outputs depend on the prompt (and some stop early), so equality means something.
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(0.0, 0.3, generator=generator)
    # transformers serve samples only if the model's generation config says so; a temperature alone does not.
    model.generation_config.do_sample = True
    save_model(model, tokenizer, folder / "tiny")
    port = free_port()
    log_path = folder / "server.log"
    # One thread: the tiny model needs no more, and two busy threads on a shared 2-core machine make
    # every request 30 times slower.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "transformers.cli.transformers",
        "serve",
        str(folder / "tiny"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"transformers serve exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"transformers serve did not answer:\n{log_path.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        yield {"url": url, "model": str(folder / "tiny"), "log": log_path}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (zombies have an empty one)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # it ended while we looked
    return found
