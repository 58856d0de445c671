"""A webhook receiver on loopback that wakes a waiting round when Label Studio reports work.

Label Studio (Community edition too) calls a registered URL on ``ANNOTATION_CREATED`` and
``ANNOTATION_UPDATED``. The receiver only sets an event: the waiting loop then asks the server
for its counts, so a call that never arrives (the receiver was down, the server could not reach
it) costs one poll interval, never an annotation. Label Studio refuses loopback webhook URLs
unless its SSRF protection is off, which the local server that ``ilf labelstudio serve`` starts
does; a remote server needs a receiver address it can reach.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
PATH = "/ilf-webhook"  # how the loop recognises its own hooks, left behind by a run that was killed


class WebhookReceiver:
    """An HTTP server on ``host:port`` (0: a free port) in a daemon thread; ``event`` is set on
    every POST and ``received`` counts them by action."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.event = threading.Event()
        self.received: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    action = json.loads(body or b"{}").get("action", "unknown")
                except ValueError:
                    action = "unparsable"
                receiver.received[action] = receiver.received.get(action, 0) + 1
                receiver.event.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}{PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="ilf-webhook", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def register(sdk: Any, project_id: int, url: str) -> int:
    """Register ``url`` for the project's annotation events, replacing the hooks an earlier
    receiver of ours left there (each would cost the server a timeout per annotation)."""
    for hook in sdk.webhooks.list(project=project_id):
        if (hook.url or "").endswith(PATH):
            sdk.webhooks.delete(hook.id)
    hook = sdk.webhooks.create(url=url, project=project_id, actions=list(ACTIONS), send_payload=False, send_for_all_actions=False)
    return int(hook.id)


__all__ = ["ACTIONS", "WebhookReceiver", "register"]
