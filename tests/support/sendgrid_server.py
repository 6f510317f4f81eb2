"""A local stand-in for SendGrid's v3 Mail Send API and its Signed Event Webhook.

It checks each request as the real API does (Bearer key, JSON shape, 1..1,000
personalizations, at most 1,000 addresses and each once, 30 MB, custom_args, content
order, names, subject) and answers 400/401/413 with the API's error shape, or 202 with an
X-Message-Id. It records what it accepted, down to what each recipient would read, can be
told to fail (429, 500, 503, slow answers, dropped connections, accepted-then-dropped),
and posts signed event batches to a webhook with a fixed test key pair.

Use it in-process (``SendGridStandIn().start()``) or as a process::

    python -m tests.support.sendgrid_server --port 8025

which prints ``listening on http://127.0.0.1:PORT`` and offers a small control API under
``/_standin/`` (summary, recipients, faults, reset) for tests that drive it from outside.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import secrets
import signal
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.sendgrid_checks import ApiError, check_request
from tests.support.sendgrid_events import (
    EVENT_TYPES,
    WEBHOOK_PUBLIC_KEY,
    make_event,
    post_events,
    sign,
)
from tests.support.sendgrid_records import AcceptedRequest, ReceivedRecipient

API_KEY = "SG.stand-in-test-key"
MAX_BODY_BYTES = 30 * 1024 * 1024


class Fault(StrEnum):
    """Ways the stand-in can misbehave for a request."""

    RATE_LIMIT = "rate_limit"  # 429 with Retry-After and X-RateLimit-*
    SERVER_ERROR = "server_error"  # 500
    UNAVAILABLE = "unavailable"  # 503
    SLOW = "slow"  # wait, then answer normally
    DROP = "drop"  # read the request, close without answering, keep nothing
    ACCEPT_THEN_DROP = "accept_then_drop"  # accept and record it, but never answer


@dataclass
class _Planned:
    fault: Fault
    retry_after: int = 1
    delay: float = 0.0


@dataclass
class _RandomFaults:
    weights: dict[Fault, float]
    retry_after: int
    delay: float
    rng: random.Random = field(default_factory=random.Random)

    def pick(self) -> _Planned | None:
        """A fault drawn by the configured chances, or None for a normal answer."""
        roll = self.rng.random()
        for fault, weight in self.weights.items():
            if roll < weight:
                return _Planned(fault, self.retry_after, self.delay)
            roll -= weight
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark sends thousands of requests."""

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.stand_in._count(status)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"errors": [{"message": "Content-Length required", "field": None}]})
            return None
        if length > MAX_BODY_BYTES:
            # Drained first, so the client reads the answer instead of a reset.
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._answer(
                413, {"errors": [{"message": "Payload Too Large", "field": None, "help": None}]}
            )
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        """Control API: summary and recipients."""
        stand_in = self.server.stand_in
        if self.path == "/_standin/summary":
            self._answer(200, stand_in.summary())
        elif self.path == "/_standin/recipients":
            self._answer(200, [r.as_dict() for r in stand_in.recipients_snapshot()])
        else:
            self._answer(404, {"errors": [{"message": "Not Found", "field": None}]})

    def do_POST(self) -> None:
        """Mail Send, and the control API's faults and reset."""
        stand_in = self.server.stand_in
        path = self.path.split("?", 1)[0]
        if path.startswith("/_standin/"):
            self._control(path)
            return
        if path != "/v3/mail/send":
            self._answer(404, {"errors": [{"message": "Not Found", "field": None}]})
            return
        stand_in._count("attempts")
        raw = self._read_body()
        if raw is None:
            return
        planned = stand_in._next_fault()
        if planned is not None:
            if planned.fault == Fault.SLOW:
                time.sleep(planned.delay)
            elif planned.fault == Fault.DROP:
                stand_in._count("dropped")
                self._drop()
                return
            elif planned.fault == Fault.RATE_LIMIT:
                reset = int(time.time()) + planned.retry_after
                self._answer(
                    429,
                    {"errors": [{"message": "too many requests", "field": None, "help": None}]},
                    {
                        "Retry-After": str(planned.retry_after),
                        "X-RateLimit-Limit": "600",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(reset),
                    },
                )
                return
            elif planned.fault in (Fault.SERVER_ERROR, Fault.UNAVAILABLE):
                status = 500 if planned.fault == Fault.SERVER_ERROR else 503
                self._answer(status, {"errors": [{"message": "internal error", "field": None}]})
                return
        if self.headers.get("Authorization") != f"Bearer {stand_in.api_key}":
            self._answer(
                401,
                {
                    "errors": [
                        {
                            "field": None,
                            "message": "The provided authorization grant is invalid, "
                            "expired, or revoked",
                            "help": None,
                        }
                    ]
                },
            )
            return
        try:
            body = json.loads(raw)
            check_request(body)
        except json.JSONDecodeError:
            self._answer(400, {"errors": [{"message": "Bad Request", "field": None, "help": None}]})
            return
        except ApiError as error:
            self._answer(400, {"errors": error.errors})
            return
        message_id = stand_in._accept(body, len(raw))
        if planned is not None and planned.fault == Fault.ACCEPT_THEN_DROP:
            stand_in._count("accepted_then_dropped")
            self._drop()
            return
        self._answer(202, None, {"X-Message-Id": message_id})

    def _control(self, path: str) -> None:
        stand_in = self.server.stand_in
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(raw or b"{}")
            if path == "/_standin/reset":
                stand_in.reset()
            elif path == "/_standin/faults":
                if payload.get("clear"):
                    stand_in.clear_faults()
                if "random" in payload:
                    stand_in.random_faults(**payload["random"])
                if "fault" in payload:
                    stand_in.fail_next(
                        int(payload.get("count", 1)),
                        Fault(payload["fault"]),
                        retry_after=int(payload.get("retry_after", 1)),
                        delay=float(payload.get("delay", 0.0)),
                    )
            else:
                self._answer(404, {"errors": [{"message": "Not Found", "field": None}]})
                return
        except (ValueError, TypeError, KeyError) as error:
            self._answer(400, {"errors": [{"message": str(error), "field": None}]})
            return
        self._answer(200, stand_in.summary())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    stand_in: SendGridStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is not the server's problem."""


class SendGridStandIn:
    """The stand-in server; start it, point the backend at :attr:`url`, stop it after."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = API_KEY) -> None:
        self.host = host
        self.requested_port = port
        self.api_key = api_key
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> SendGridStandIn:
        """Listen and serve in a background thread; returns self."""
        server = _Server((self.host, self.requested_port), _Handler)
        server.stand_in = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name="sendgrid-stand-in",
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None, "stand-in not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The host to give the backend (``HELPDESK_SENDGRID_HOST``)."""
        return f"http://{self.host}:{self.port}"

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything received and every planned fault."""
        with self._lock:
            self.accepted: list[AcceptedRequest] = []
            self.recipients: list[ReceivedRecipient] = []
            self.counts: Counter[str | int] = Counter()
            self._planned: deque[_Planned] = deque()
            self._random: _RandomFaults | None = None

    def _count(self, key: str | int) -> None:
        with self._lock:
            self.counts[key] += 1

    @property
    def attempts(self) -> int:
        """Mail Send requests received, whatever became of them."""
        return self.counts["attempts"]

    def _accept(self, body: dict[str, Any], size: int) -> str:
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        request = AcceptedRequest(message_id, body, size)
        received = [
            ReceivedRecipient(entry["email"], entry.get("name"), kind, request, position)
            for position, p in enumerate(body["personalizations"])
            for kind in ("to", "cc", "bcc")
            for entry in p.get(kind, [])
        ]
        with self._lock:
            self.accepted.append(request)
            self.recipients.extend(received)
        return message_id

    def recipients_snapshot(self) -> list[ReceivedRecipient]:
        """A copy of the recipients accepted so far."""
        with self._lock:
            return list(self.recipients)

    def received_by(self, address: str) -> list[ReceivedRecipient]:
        """Every accepted copy addressed to ``address`` (case-insensitive)."""
        key = address.lower()
        return [r for r in self.recipients_snapshot() if r.address.lower() == key]

    def summary(self) -> dict[str, Any]:
        """Counters for the control API and for logs."""
        with self._lock:
            return {
                "attempts": self.counts["attempts"],
                "accepted_requests": len(self.accepted),
                "recipients": len(self.recipients),
                "statuses": {str(k): v for k, v in self.counts.items() if isinstance(k, int)},
                "dropped": self.counts["dropped"],
                "accepted_then_dropped": self.counts["accepted_then_dropped"],
            }

    # -- faults -----------------------------------------------------------------------------

    def fail_next(
        self, count: int, fault: Fault, *, retry_after: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next ``count`` Mail Send requests misbehave as ``fault``."""
        with self._lock:
            self._planned.extend(_Planned(Fault(fault), retry_after, delay) for _ in range(count))

    def random_faults(
        self,
        *,
        rate_limit: float = 0.0,
        server_error: float = 0.0,
        unavailable: float = 0.0,
        slow: float = 0.0,
        drop: float = 0.0,
        accept_then_drop: float = 0.0,
        retry_after: int = 1,
        slow_delay: float = 0.5,
        seed: int | None = None,
    ) -> None:
        """Give every request these chances of misbehaving (after any planned faults)."""
        weights = {
            Fault.RATE_LIMIT: rate_limit,
            Fault.SERVER_ERROR: server_error,
            Fault.UNAVAILABLE: unavailable,
            Fault.SLOW: slow,
            Fault.DROP: drop,
            Fault.ACCEPT_THEN_DROP: accept_then_drop,
        }
        if any(w < 0 for w in weights.values()) or sum(weights.values()) > 1:
            raise ValueError("fault probabilities must be >= 0 and add up to at most 1")
        with self._lock:
            self._random = _RandomFaults(
                {f: w for f, w in weights.items() if w},
                retry_after,
                slow_delay,
                random.Random(seed),
            )

    def clear_faults(self) -> None:
        """No more faults: planned or random."""
        with self._lock:
            self._planned.clear()
            self._random = None

    def _next_fault(self) -> _Planned | None:
        with self._lock:
            if self._planned:
                return self._planned.popleft()
            return self._random.pick() if self._random else None

    # -- events -----------------------------------------------------------------------------

    def events_for(
        self, recipients: list[ReceivedRecipient], event: str, **fields: Any
    ) -> list[dict[str, Any]]:
        """One event of kind ``event`` per recipient (see :func:`make_event`)."""
        return [make_event(r, event, **fields) for r in recipients]

    def post_events(self, url: str, events: list[dict[str, Any]], **kwargs: Any) -> int:
        """Sign and post ``events`` to ``url``; returns the HTTP status (see post_events)."""
        return post_events(url, events, **kwargs)


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=API_KEY)
    args = parser.parse_args(argv)
    stand_in = SendGridStandIn(args.host, args.port, args.api_key).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"listening on {stand_in.url}", flush=True)
    stopped.wait()
    stand_in.stop()


if __name__ == "__main__":
    main()


__all__ = [
    "API_KEY",
    "EVENT_TYPES",
    "WEBHOOK_PUBLIC_KEY",
    "AcceptedRequest",
    "Fault",
    "ReceivedRecipient",
    "SendGridStandIn",
    "make_event",
    "post_events",
    "sign",
]
