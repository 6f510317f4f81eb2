"""A local stand-in for Discord's webhook endpoint that records what it was sent.

``POST /webhooks/<id>/<token>`` with a JSON body answers 204 like Discord (or 400 for a
body that is not JSON with ``content``), and keeps ``(id, token, payload)``. It can be
told to answer the next requests with errors (500, or 429 with ``Retry-After``) to test
retries. Point ``HELPDESK_DISCORD_API_URL`` at ``server.url``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(r"^/webhooks/(\d+)/([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class Post:
    """One message Discord accepted."""

    webhook_id: str
    token: str
    payload: dict[str, Any]

    @property
    def content(self) -> str:
        """The message text."""
        return self.payload.get("content", "")


class DiscordStandIn:
    """The stand-in server; ``start()`` it, read ``posts``, ``stop()`` it."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.attempts = 0
        self.faults: deque[int] = deque()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL to use as HELPDESK_DISCORD_API_URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (500, 429, 404, ...)."""
        with self.lock:
            self.faults.extend(statuses)

    def reset(self) -> None:
        """Forget posts and faults."""
        with self.lock:
            self.posts.clear()
            self.faults.clear()
            self.attempts = 0

    def start(self) -> DiscordStandIn:
        """Listen on a free loopback port in a thread."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                match = _PATH.match(self.path)
                with stand_in.lock:
                    stand_in.attempts += 1
                    fault = stand_in.faults.popleft() if stand_in.faults else None
                if fault is not None:
                    self._answer(fault, {"message": "stand-in fault", "retry_after": 0.1})
                    return
                if match is None:
                    self._answer(404, {"message": "Unknown Webhook", "code": 10015})
                    return
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                if not isinstance(payload, dict) or not isinstance(payload.get("content"), str):
                    self._answer(400, {"message": "Cannot send an empty message", "code": 50006})
                    return
                with stand_in.lock:
                    stand_in.posts.append(Post(match[1], match[2], payload))
                self.send_response(204)
                self.end_headers()

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0.1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
