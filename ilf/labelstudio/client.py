"""Talk to a Label Studio server through label-studio-sdk: projects, task import, export.

Every call goes through ``_call``, which retries transient failures (connection errors, timeouts,
HTTP 429 and 5xx) with exponential backoff and turns the rest into one-line
``LabelStudioError``s that name the URL and the server's message, never the API key. The SDK
itself handles both kinds of token: a legacy token is sent as ``Token ...``; a personal access
token (a JWT refresh token) is exchanged for short-lived access tokens and refreshed as needed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from ilf.errors import IlfError

log = logging.getLogger(__name__)

TEMPLATES = ("feedback", "ideal", "pairwise", "ranking", "select", "code_feedback")
DESCRIPTION_PREFIX = "Created by ilf; template: "
T = TypeVar("T")


class LabelStudioError(IlfError):
    """A failure talking to Label Studio, with a message fit for one line of output."""


def template_config(name: str) -> str:
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r} (choose from {', '.join(TEMPLATES)})")
    return resources.files("ilf.labelstudio.templates").joinpath(f"{name}.xml").read_text(encoding="utf-8")


@dataclass
class Connection:
    url: str
    api_key: str

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"Connection(url={self.url!r}, api_key=<hidden>)"


def resolve_connection(url: str | None = None, data_dir: str | Path | None = None) -> Connection:
    """URL and key from the arguments, then LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, then the
    local server recorded in ``data_dir`` (default: the one ``ilf labelstudio serve`` starts)."""
    from ilf.labelstudio.server import Credentials, ServerInfo, default_home

    url = url or os.environ.get("LABEL_STUDIO_URL")
    api_key = os.environ.get("LABEL_STUDIO_API_KEY")
    local = Path(data_dir) if data_dir else default_home() / "data"
    if url is None:
        info = ServerInfo.read(local.resolve())
        if info is None:
            raise LabelStudioError(
                f"no Label Studio URL: pass --url, set LABEL_STUDIO_URL, or start one with `ilf labelstudio serve` (looked in {local})"
            )
        url = info.url
    if api_key is None:
        creds_path = local / "credentials.json"
        if not creds_path.exists():
            raise LabelStudioError(f"no API key for {url}: set LABEL_STUDIO_API_KEY")
        api_key = Credentials.load_or_create(local).token
    return Connection(url=url.rstrip("/"), api_key=api_key)


class LabelStudio:
    """The few operations ilf needs, with retries and readable errors."""

    def __init__(self, connection: Connection, retries: int = 4, backoff: float = 0.5, timeout: float = 120.0) -> None:
        from label_studio_sdk import LabelStudio as SDKClient

        self.connection = connection
        self.url = connection.url
        self.retries = retries
        self.backoff = backoff
        from label_studio_sdk.core.api_error import ApiError

        try:
            self.sdk = SDKClient(base_url=connection.url, api_key=connection.api_key, timeout=timeout, max_retries=0)
        except ApiError as err:
            # The SDK checks a JWT personal access token (expiry, shape) before any request.
            raise LabelStudioError(f"{self.url}: the API key was refused: {_message(err.body)}") from None

    # ----- error handling ----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except ApiError as err:
                status = err.status_code or 0
                if status in (401, 403):
                    raise LabelStudioError(f"{self.url}: the API key was refused (HTTP {status}) while trying to {what}") from None
                if (status == 429 or status >= 500) and attempt < self.retries:
                    log.warning("%s: HTTP %d while trying to %s; retrying in %.1f s", self.url, status, what, delay)
                else:
                    raise LabelStudioError(f"{self.url}: could not {what}: HTTP {status}: {_message(err.body)}") from None
            except (httpx.TransportError, ConnectionError) as err:
                if attempt >= self.retries:
                    raise LabelStudioError(f"cannot reach Label Studio at {self.url} to {what}: {type(err).__name__}: {err}") from None
                log.warning("%s: %s while trying to %s; retrying in %.1f s", self.url, type(err).__name__, what, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    # ----- operations --------------------------------------------------------------------------

    def check(self) -> str:
        """Who the key belongs to; fails with a clear message on a bad URL or key."""
        user = self._call("identify the API key's user", self.sdk.users.whoami)
        return getattr(user, "email", None) or getattr(user, "username", "") or str(user.id)

    def find_project(self, title: str) -> Any | None:
        projects = self._call("list projects", lambda: list(self.sdk.projects.list(title=title)))
        matches = [p for p in projects if p.title == title]
        return matches[0] if matches else None

    def project_template(self, project: Any) -> str | None:
        description = project.description or ""
        if description.startswith(DESCRIPTION_PREFIX):
            return description[len(DESCRIPTION_PREFIX) :].split()[0]
        return None

    def get_or_create_project(self, title: str, template: str) -> tuple[Any, bool]:
        project = self.find_project(title)
        if project is not None:
            existing = self.project_template(project)
            if existing and existing != template:
                raise LabelStudioError(f"{self.url}: project {title!r} uses template {existing!r}, not {template!r}")
            return project, False
        config = template_config(template)
        project = self._call(
            f"create project {title!r}",
            lambda: self.sdk.projects.create(title=title, label_config=config, description=DESCRIPTION_PREFIX + template),
        )
        return project, True

    def export_tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project with its annotations, in one request."""

        def download() -> list[dict[str, Any]]:
            chunks = self.sdk.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)
            return json.loads(b"".join(chunks) or b"[]")

        return self._call(f"export project {project_id}", download)

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> int:
        response = self._call(
            f"import {len(tasks)} tasks into project {project_id}",
            lambda: self.sdk.projects.import_tasks(id=project_id, request=tasks, return_task_ids=False),
        )
        return int(getattr(response, "task_count", None) or len(tasks))

    def user_emails(self) -> dict[int, str]:
        users = self._call("list users", lambda: list(self.sdk.users.list()))
        return {u.id: (u.email or u.username or str(u.id)) for u in users}


def _message(body: Any) -> str:
    """The server's explanation, without the headers and tracebacks an ApiError carries."""
    if isinstance(body, dict):
        parts = [body[key] for key in ("detail", "message", "error", "validation_errors") if body.get(key)]
        if parts:
            return ": ".join(p if isinstance(p, str) else json.dumps(p) for p in parts)[:600]
    return str(body)[:600]


def batched(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
