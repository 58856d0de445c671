"""Generation on a server that speaks the OpenAI API (vLLM, TGI, ``transformers serve``, ...).

Why the ``openai`` client and not hand-written HTTP: it already has the retry policy this needs
(timeouts, connection errors, 408, 409, 429 and 5xx retried with exponential backoff and jitter,
honouring ``Retry-After``; other 4xx fail at once) and typed errors, and it tracks the API as it changes. What
is left here is concurrency, seeding and error messages a user can act on.

Why the legacy ``/v1/completions`` endpoint: prompts are complete templates, and a chat endpoint
would wrap them in the model's chat template.

Why one request per sample instead of ``n``: ``transformers serve`` ignores ``n`` (it logs a
warning and returns one choice). A request per sample, each with its own seed derived from the
caller's, is reproducible on every server that honours per-request seeds, and vLLM's prefix cache
takes back most of the cost of sending a prompt N times.

What ``transformers serve`` (5.x) does differently from the local backend:

- it tokenizes the prompt with special tokens, so tokenizers that add a BOS (Llama's) get one that
  the local backend does not add; byte-level BPE tokenizers without a post-processor (GPT-2 style,
  the tiny models) see identical ids;
- it samples only if the model's ``generation_config.json`` says ``do_sample: true``: a temperature
  above 0 does not switch sampling on, so N samples come back identical (a warning below says so);
- it sets the global torch seed when a request arrives, so seeded samples are reproducible only
  with ``remote.concurrency: 1``;
- ``max_prompt_tokens`` is not applied here: the server, which holds the tokenizer, sees the whole
  prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import openai

from ilf.config import ModelConfig, RemoteConfig, SamplingConfig
from ilf.errors import IlfError

log = logging.getLogger(__name__)

REQUESTS_PER_WORKER = 4  # prompts per batch per request slot: journaling after each batch must not idle the slots


class RemoteError(IlfError):
    """A failure talking to the generation server; one line naming the URL and the model, never the key."""


def _api_key(remote: RemoteConfig) -> str:
    """The key from the environment variable the config names."""
    if remote.api_key_env is None:
        return "EMPTY"  # the client insists on a key; servers without authentication ignore it
    key = os.environ.get(remote.api_key_env, "")
    if not key:
        raise RemoteError(f"{remote.base_url}: environment variable {remote.api_key_env} (remote.api_key_env) is unset or empty")
    return key


def _draw_seed(seed: int, prompt_index: int, draw: int) -> int:
    """A seed per sample, stable across runs (``hash()`` is salted per process) and within 31 bits for any server."""
    digest = hashlib.sha256(f"{seed}:{prompt_index}:{draw}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


class RemoteSampler:
    """Samples from an OpenAI-compatible server, up to ``remote.concurrency`` requests at a time."""

    def __init__(self, config: ModelConfig) -> None:
        self.model = config.name_or_path
        self.remote = config.remote
        self.url = config.remote.base_url.rstrip("/")
        self._key = _api_key(config.remote)
        self.client = openai.OpenAI(
            base_url=self.url, api_key=self._key, timeout=config.remote.timeout, max_retries=config.remote.max_retries
        )
        self.concurrency = max(1, config.remote.concurrency)
        self.batch_size: int | None = self.concurrency * REQUESTS_PER_WORKER
        self._warned: set[str] = set()

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        # Only orders the batches, and the tokenizer lives on the server: characters will do.
        return [len(p) for p in prompts]

    def sample(self, prompts: list[str], num_return: int, sampling: SamplingConfig, seed: int) -> tuple[list[list[str]], int]:
        if sampling.max_prompt_tokens is not None:
            self._warn_once("truncate", "max_prompt_tokens is not applied by the openai backend: the server sees whole prompts")
        jobs = [(i, d) for i in range(len(prompts)) for d in range(num_return)]
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(jobs))))
        try:
            futures = [pool.submit(self._complete, prompts[i], sampling, _draw_seed(seed, i, d)) for i, d in jobs]
            done = [f.result() for f in futures]
        finally:
            pool.shutdown(cancel_futures=True)  # after a failure, send nothing more
        texts = [[done[i * num_return + d][0] for d in range(num_return)] for i in range(len(prompts))]
        tokens = sum(n for _, n in done)
        if num_return > 1 and all(len(set(t)) == 1 for t in texts):
            self._warn_once(
                "greedy",
                f"{self.url}: all {num_return} samples of every prompt are identical; the server may be decoding greedily "
                "(transformers serve samples only if the model's generation_config.json has do_sample: true)",
            )
        return texts, tokens

    def _complete(self, prompt: str, sampling: SamplingConfig, seed: int) -> tuple[str, int]:
        params = dict(model=self.model, prompt=prompt, max_tokens=sampling.max_new_tokens, seed=seed)
        if sampling.do_sample:
            params.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            params.update(temperature=0.0)
        try:
            response = self.client.completions.create(**params)
        except openai.APIStatusError as err:
            status = err.status_code
            retried = status in (408, 409, 429) or status >= 500  # what the client retries
            hint = " (is base_url the API root, ending in /v1?)" if status == 404 else ""
            tail = f" (gave up after {self.remote.max_retries} retries)" if retried else ""
            raise self._error(f"HTTP {status}: {_server_message(err)}{hint}{tail}") from None
        except openai.APITimeoutError:
            raise self._error(f"no answer within {self.remote.timeout:g} s (gave up after {self.remote.max_retries} retries)") from None
        except openai.APIConnectionError as err:
            cause = err.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause else err.message
            raise self._error(f"cannot connect: {reason} (gave up after {self.remote.max_retries} retries)") from None
        if not response.choices:
            raise self._error("the answer holds no choices")
        usage = response.usage.completion_tokens if response.usage else 0
        return response.choices[0].text, usage

    def _error(self, message: str) -> RemoteError:
        text = f"{self.url}/completions, model {self.model!r}: {message}"
        if self._key != "EMPTY":
            text = text.replace(self._key, "<api key>")  # a server may echo the header it refused
        return RemoteError(" ".join(text.split()))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"RemoteSampler(url={self.url!r}, model={self.model!r})"


def _server_message(err: object) -> str:
    """The server's own words: OpenAI and vLLM nest them in ``error.message``, FastAPI in ``detail``."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        body = body.get("message") or body.get("detail") or body
    if body is None:
        return getattr(getattr(err, "response", None), "text", "") or str(err)
    return (body if isinstance(body, str) else json.dumps(body))[:500]
