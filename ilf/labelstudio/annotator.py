"""A simulated annotator that works in Label Studio the way a person does, over HTTP.

It has an account of its own, made the way a colleague joins: the organisation's invite link,
the sign-up form (with its CSRF cookie), then the account's own API token. It then asks the
project for its next task (``/api/projects/<id>/next/``, what the labelling stream of a browser
asks), reads the task's data, and submits an annotation (or skips the task) through
``/api/tasks/<id>/annotations/``. What it writes comes from the facts world's annotator, which
knows each post's facts as a person knows what they care about; nothing reaches the run except
through Label Studio.

Used by ``ilf loop`` (``labelstudio.annotator: simulated``) and by the tests of the loop.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ilf.files import atomic_write_json
from ilf.labelstudio.client import Connection, LabelStudioError

log = logging.getLogger(__name__)

DEFAULT_EMAIL = "simulated-annotator@ilf.local"


@dataclass
class Account:
    email: str
    password: str
    token: str


def annotator_account(admin: Connection, data_dir: Path, email: str = DEFAULT_EMAIL) -> Account:
    """The annotator's account on the server: read from ``data_dir/annotators/``, or made through
    the invite link and the sign-up form on first use."""
    import httpx

    path = data_dir / "annotators" / f"{email}.json"
    if path.exists():
        return Account(**json.loads(path.read_text()))
    headers = {"Authorization": f"Token {admin.api_key}"}
    invite = httpx.get(f"{admin.url}/api/invite", headers=headers, timeout=30)
    _check(invite, admin.url, "get the organisation's invite link")
    signup_path = invite.json()["invite_url"]
    account = Account(email=email, password=secrets.token_urlsafe(18), token="")
    with httpx.Client(base_url=admin.url, timeout=30) as browser:
        page = browser.get(signup_path)
        _check(page, admin.url, "open the sign-up page")
        form = {"email": email, "password": account.password, "csrfmiddlewaretoken": browser.cookies.get("csrftoken", "")}
        answer = browser.post(signup_path, data=form, headers={"Referer": f"{admin.url}{signup_path}"})
        if answer.status_code != 302:
            raise LabelStudioError(
                f"{admin.url}: signing up {email} failed (HTTP {answer.status_code}); an account of that name may exist "
                f"without its credentials in {path.parent}"
            )
        token = browser.get("/api/current-user/token")
        _check(token, admin.url, f"read the API token of {email}")
        account.token = token.json()["token"]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(account))
    path.chmod(0o600)
    return account


def _check(response: Any, url: str, what: str) -> None:
    if response.status_code >= 400:
        raise LabelStudioError(f"{url}: could not {what}: HTTP {response.status_code}: {response.text[:300]}")


Critic = Callable[[dict[str, Any]], str]


@dataclass
class AnnotatorStats:
    annotated: int = 0
    skipped: int = 0


def annotate_project(
    url: str,
    token: str,
    project_id: int,
    critic: Critic,
    delay: float = 0.0,
    skip_share: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
) -> AnnotatorStats:
    """Take the project's next task until none is left (or ``limit``), and critique or skip it.

    ``critic`` turns a task's data into the feedback text a person would type."""
    import httpx

    rng = random.Random(f"annotator:{seed}:{project_id}")
    stats = AnnotatorStats()
    with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60) as http:
        while limit is None or stats.annotated + stats.skipped < limit:
            started = time.monotonic()
            nxt = http.get(f"/api/projects/{project_id}/next/")
            if nxt.status_code == 404:  # the stream is empty: every task is done
                break
            _check(nxt, url, f"get the next task of project {project_id}")
            task = nxt.json()
            if delay:
                time.sleep(delay)
            skip = rng.random() < skip_share
            body: dict[str, Any] = {"task": task["id"], "project": project_id, "lead_time": time.monotonic() - started}
            if skip:
                body.update(result=[], was_cancelled=True)
            else:
                text = critic(task["data"])
                body.update(
                    result=[{"from_name": "feedback", "to_name": "output", "type": "textarea", "value": {"text": [text]}}],
                    was_cancelled=False,
                )
            sent = http.post(f"/api/tasks/{task['id']}/annotations/", params={"project": project_id}, json=body)
            _check(sent, url, f"annotate task {task['id']}")
            if skip:
                stats.skipped += 1
            else:
                stats.annotated += 1
    return stats


__all__ = ["Account", "AnnotatorStats", "annotate_project", "annotator_account"]
