"""Fixtures for the IMAP tests: a real Dovecot (with OAuth), fresh accounts, a recorder."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from helpdesk.inbound.mailbox import FetchedMail, MailboxConfig, MemoryCheckpoint
from helpdesk.inbound.oauth2 import OAuth2Config
from tests.support.dovecot import DovecotServer, dovecot, oauth2_server
from tests.support.oauth2_server import OAuth2Server

__all__ = ["dovecot", "oauth2_server"]

PASSWORD = "imap-secret"
_accounts = itertools.count(1)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> str:
    """A fresh, empty account (password PASSWORD) for this test alone."""
    name = f"user{next(_accounts)}"
    dovecot.add_user(name, PASSWORD)
    return name


@pytest.fixture
def make_config(dovecot: DovecotServer, imap_user: str) -> Callable[..., MailboxConfig]:
    """Build a MailboxConfig for the test's account: ``make_config(after_import=...)``."""

    def make(**overrides) -> MailboxConfig:
        values = {
            "name": imap_user,
            "host": dovecot.host,
            "port": dovecot.port,
            "tls": "none",
            "username": imap_user,
            "password": PASSWORD,
            "folders": ["INBOX"],
            "after_import": "leave",
            "timeout": 10.0,
        }
        values.update(overrides)
        return MailboxConfig(**values)

    return make


@pytest.fixture
def oauth_config(oauth2_server: OAuth2Server) -> Callable[[str], OAuth2Config]:
    """An OAuth client granted access to a user: ``oauth_config("user7")``."""
    serial = itertools.count(1)

    def make(username: str) -> OAuth2Config:
        client_id = f"client-{username}-{next(serial)}"
        oauth2_server.add_client(client_id, "client-secret")
        return OAuth2Config(
            client_id=client_id,
            client_secret="client-secret",
            refresh_token=oauth2_server.issue_refresh_token(client_id, username),
            token_url=oauth2_server.token_url,
        )

    return make


def make_mail(n: int, *, subject: str | None = None, body: str = "Hello.") -> bytes:
    """A small, valid mail numbered ``n``."""
    return (
        f"From: Person {n} <person{n}@example.com>\r\n"
        f"To: info@conference.test\r\n"
        f"Subject: {subject or f'Question {n}'}\r\n"
        f"Message-ID: <mail{n}@example.com>\r\n"
        f"Date: Tue, 25 Nov 2025 10:00:00 +0000\r\n"
        f"\r\n{body}\r\n"
    ).encode()


@dataclass
class Recorder:
    """A handler that records what it was given and can be told to fail or act."""

    mails: list[FetchedMail] = field(default_factory=list)
    fail_uids: set[int] = field(default_factory=set)
    on_mail: Callable[[FetchedMail], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def __call__(self, mail: FetchedMail) -> None:
        if self.on_mail is not None:
            self.on_mail(mail)
        if mail.uid in self.fail_uids:
            raise RuntimeError(f"database unavailable for UID {mail.uid}")
        with self.arrived:
            self.mails.append(mail)
            self.arrived.notify_all()

    @property
    def uids(self) -> list[int]:
        """UIDs handled, in call order."""
        with self.lock:
            return [mail.uid for mail in self.mails]

    def counts(self) -> Counter[int]:
        """How often each UID was handled."""
        with self.lock:
            return Counter(mail.uid for mail in self.mails)

    def wait_for(self, predicate: Callable[[list[FetchedMail]], bool], timeout: float) -> bool:
        """Block until ``predicate(mails)`` holds (True) or ``timeout`` passes (False)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self.mails), timeout)


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording handler."""
    return Recorder()


@pytest.fixture
def checkpoint() -> MemoryCheckpoint:
    """An empty in-memory checkpoint."""
    return MemoryCheckpoint()
