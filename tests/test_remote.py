"""The openai backend against a real ``transformers serve`` on loopback, serving a tiny saved model."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, slf5k_row, small_run_overrides
from flaky_proxy import FlakyProxy

from ilf.config import ModelConfig, RemoteConfig, SamplingConfig, TaskConfig
from ilf.data.slf5k import convert_row
from ilf.generate import generate_outputs
from ilf.labelstudio.server import free_port
from ilf.models import load_model
from ilf.records import Refinements, read_records
from ilf.remote import RemoteError, RemoteSampler
from ilf.tasks import get_task

KEY_ENV = "ILF_TEST_REMOTE_KEY"
SECRET = "sk-test-4f9d1c2b7a"
GREEDY = SamplingConfig(do_sample=False, max_new_tokens=16, batch_size=4)


def remote(server: dict, url: str | None = None, model: str | None = None, **options) -> ModelConfig:
    options.setdefault("max_retries", 0)
    return ModelConfig(
        name_or_path=model or server["model"],
        backend="openai",
        remote=RemoteConfig(base_url=f"{url or server['url']}/v1", **options),
    )


@pytest.fixture(scope="module")
def summarization():
    task = get_task(TaskConfig(name="summarization"))
    samples = [convert_row(slf5k_row(i), Path("rows.jsonl"), i + 1)[0] for i in range(6)]
    prompts = [task.initial_prompt(s) for s in samples]
    prompts += [task.refine_prompt(s, s.initial_output, "Say who did what.") for s in samples[:2]]
    return task, prompts


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def test_greedy_outputs_equal_the_same_model_run_locally(server, summarization) -> None:
    task, prompts = summarization
    local = load_model(ModelConfig(name_or_path=server["model"]))
    expected, local_stats = generate_outputs(local, task, prompts, 1, GREEDY, seed=0)
    got, stats = generate_outputs(remote(server, concurrency=4), task, prompts, 1, GREEDY, seed=0)
    assert got == expected  # same prompt tokens, same decoding, same post-processing
    assert len({texts[0] for texts in got.values()}) == len(prompts)  # every prompt its own text
    assert stats.new_tokens == local_stats.new_tokens > 0  # counted alike, end-of-text included
    twice, _ = generate_outputs(remote(server, concurrency=4), task, prompts, 2, GREEDY, seed=0)
    assert twice == {i: texts * 2 for i, texts in expected.items()}  # greedy: one request, the text repeated
    # The server tokenizes with special tokens, the local backend without; this tokenizer adds none,
    # so the prompts the model sees are identical (the server's own count says so).
    import openai

    client = openai.OpenAI(base_url=f"{server['url']}/v1", api_key="EMPTY", max_retries=0)
    answer = client.completions.create(model=server["model"], prompt=prompts[0], max_tokens=1, temperature=0.0)
    assert answer.usage.prompt_tokens == len(local.tokenizer(prompts[0], add_special_tokens=False)["input_ids"])


def test_n_samples_per_prompt_seeded_and_concurrent(server, summarization, caplog) -> None:
    task, prompts = summarization
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=12, max_resamples=1)
    serial = remote(server, concurrency=1)  # the server seeds torch's global generator: one request at a time
    first, stats = generate_outputs(serial, task, prompts[:4], 3, sampling, seed=7)
    again, _ = generate_outputs(serial, task, prompts[:4], 3, sampling, seed=7)
    other, _ = generate_outputs(serial, task, prompts[:4], 3, sampling, seed=8)
    assert sorted(first) == [0, 1, 2, 3] and all(len(texts) == 3 for texts in first.values())
    assert first == again and first != other
    assert sum(len(set(texts)) for texts in first.values()) > 4  # samples differ: not a greedy server
    assert stats.new_tokens > 0 and stats.outputs == 12

    sampler = RemoteSampler(remote(server, concurrency=4))
    assert sampler.batch_size == 16
    texts, tokens = sampler.sample(prompts, 3, sampling, seed=1)
    assert [len(t) for t in texts] == [3] * len(prompts) and tokens > 0
    assert "identical" not in caplog.text


def test_a_burst_of_503_is_retried_and_survived(server, summarization, secret) -> None:
    task, prompts = summarization
    expected, _ = generate_outputs(remote(server), task, prompts[:1], 1, GREEDY, seed=0)
    with FlakyProxy(server["url"]) as proxy:
        proxy.unavailable_first = 2
        config = remote(server, url=proxy.url, max_retries=3, api_key_env=KEY_ENV)
        got, _ = generate_outputs(config, task, prompts[:1], 1, GREEDY, seed=0)
    assert got == expected
    assert proxy.requests == 3  # two refused, the third answered


def test_a_server_that_keeps_failing_gives_one_line_naming_url_and_model(server, summarization, secret) -> None:
    task, prompts = summarization
    with FlakyProxy(server["url"]) as proxy:
        proxy.unavailable_first = 10**6
        config = remote(server, url=proxy.url, max_retries=2, api_key_env=KEY_ENV)
        with pytest.raises(RemoteError) as caught:
            generate_outputs(config, task, prompts[:1], 1, GREEDY, seed=0)
    message = str(caught.value)
    assert proxy.requests == 3  # the first try and two retries
    assert f"{proxy.url}/v1/completions" in message and server["model"] in message
    assert "HTTP 503" in message and "temporarily unavailable" in message and "after 2 retries" in message
    assert "\n" not in message and SECRET not in message


def test_a_client_error_fails_at_once_with_the_servers_message(server, summarization) -> None:
    task, prompts = summarization
    with FlakyProxy(server["url"]) as proxy:
        with pytest.raises(RemoteError) as caught:
            generate_outputs(remote(server, url=proxy.url, model="not-served", max_retries=3), task, prompts[:1], 1, GREEDY, seed=0)
    assert proxy.requests == 1
    assert "HTTP 400" in str(caught.value) and "Server is pinned to" in str(caught.value)


def test_an_unreachable_url_gives_a_clear_error(summarization, secret) -> None:
    task, prompts = summarization
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = ModelConfig(
        name_or_path="m", backend="openai", remote=RemoteConfig(base_url=f"{url}/v1", max_retries=1, timeout=5, api_key_env=KEY_ENV)
    )
    with pytest.raises(RemoteError) as caught:
        generate_outputs(config, task, prompts[:1], 1, GREEDY, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{url}/v1/completions, model 'm': cannot connect") and "after 1 retries" in message
    assert "\n" not in message and SECRET not in message


def test_the_key_comes_from_the_named_variable_is_sent_and_never_shown(monkeypatch, secret) -> None:
    seen: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_POST(self) -> None:  # a server that quotes the credentials it refuses
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"error": {"message": f"invalid key {self.headers.get('Authorization')}"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    config = ModelConfig(
        name_or_path="m",
        backend="openai",
        remote=RemoteConfig(base_url=f"http://127.0.0.1:{stub.server_address[1]}/v1", max_retries=3, api_key_env=KEY_ENV),
    )
    try:
        with pytest.raises(RemoteError) as caught:
            RemoteSampler(config).sample(["x"], 1, GREEDY, seed=0)
    finally:
        stub.shutdown()
        stub.server_close()
    assert seen == [f"Bearer {SECRET}"]  # sent once: a 401 is not retried
    assert "HTTP 401" in str(caught.value) and "invalid key Bearer <api key>" in str(caught.value)
    assert SECRET not in str(caught.value) + repr(RemoteSampler(config))

    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(RemoteError, match=f"environment variable {KEY_ENV} .* unset"):
        RemoteSampler(config)


@pytest.mark.slow
def test_refine_stage_with_an_openai_refiner(server, slf5k_dir: Path, tmp_path: Path) -> None:
    from ilf.cli import main

    run_dir = tmp_path / "run"
    with FlakyProxy(server["url"]) as proxy:
        overrides = [
            *small_run_overrides(slf5k_dir),
            "refiner.backend=openai",
            f"refiner.name_or_path={server['model']}",
            f"refiner.remote.base_url={proxy.url}/v1",
            "refiner.remote.concurrency=1",
        ]  # seeds hold only one request at a time: a fixed outcome
        argv = ["run", str(REPO / "experiments" / "offline.yaml"), "--run-dir", str(run_dir), "--until", "refine"]
        assert main([*argv, *(arg for item in overrides for arg in ("--set", item))]) == 0
    refinements = read_records(run_dir / "refinements.jsonl", Refinements)
    assert len(refinements) == 8
    assert all(len(r.candidates) == 3 for r in refinements)
    texts = [c.text for r in refinements for c in r.candidates]
    assert sum(bool(t) for t in texts) >= 16  # a few stay empty: this model often ends with its first token
    assert proxy.requests >= 8 * 3  # the candidates came from the server, not from a local model
