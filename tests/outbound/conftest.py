"""Fixtures for the outbound mail tests: batches, a SendGrid stand-in, SMTP servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import trustme

from helpdesk.outbound.backends import OutgoingAttachment, OutgoingBatch, Recipient
from helpdesk.outbound.backends.sendgrid import SendGridBackend
from tests.support.sendgrid_server import API_KEY, SendGridStandIn
from tests.support.smtp_server import SmtpTestServer

FROM = "Konferenz Büro <office@conference.example>"


def make_batch(
    count: int = 1,
    *,
    start: int = 0,
    subject: str = "Hello -name-",
    text: str = "Dear -name-,\nyour code is -code-.\n",
    html: str | None = "<p>Dear -name-, your code is <b>-code-</b>.</p>",
    attachments: list[OutgoingAttachment] | None = None,
    headers: dict[str, str] | None = None,
    **fields,
) -> OutgoingBatch:
    """A newsletter-like batch: recipient i is person{i}@example.com with its own values."""
    recipients = [
        Recipient(
            to=[f"Person {i} <person{i}@example.com>"],
            substitutions={"-name-": f"Person {i}", "-code-": f"C{i:05d}"},
            headers={
                "List-Unsubscribe": f"<https://conference.example/unsubscribe/{i}>",
                "Message-ID": f"<delivery-{i}@conference.example>",
            },
            custom_args={"delivery_id": str(i)},
        )
        for i in range(start, start + count)
    ]
    return OutgoingBatch(
        from_addr=FROM,
        subject=subject,
        text=text,
        html=html,
        headers={"Auto-Submitted": "auto-generated", **(headers or {})},
        attachments=attachments or [],
        recipients=recipients,
        **fields,
    )


@pytest.fixture
def batch_factory() -> Callable[..., OutgoingBatch]:
    """``batch_factory(count, start=..., subject=..., ...)``: see make_batch."""
    return make_batch


@pytest.fixture
def stand_in() -> Iterator[SendGridStandIn]:
    """A fresh SendGrid stand-in on a free loopback port."""
    with SendGridStandIn() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """The waits a backend asked for, recorded instead of slept."""
    return []


@pytest.fixture
def sendgrid_backend(stand_in, sleeps) -> Callable[..., SendGridBackend]:
    """``sendgrid_backend(**options)``: a backend aimed at the stand-in that records waits."""

    def make(**options) -> SendGridBackend:
        options.setdefault("host", stand_in.url)
        options.setdefault("timeout", 5.0)
        options.setdefault("sleep", sleeps.append)
        return SendGridBackend(options.pop("api_key", API_KEY), **options)

    return make


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """A throw-away certificate authority for the TLS test servers."""
    return trustme.CA()


@pytest.fixture
def smtp_server(test_ca) -> Iterator[Callable[..., SmtpTestServer]]:
    """``smtp_server(tls=None|"starttls"|"implicit", users={...})``, stopped after the test."""
    started: list[SmtpTestServer] = []

    def start(**options) -> SmtpTestServer:
        if options.get("tls"):
            options.setdefault("ca", test_ca)
        server = SmtpTestServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
