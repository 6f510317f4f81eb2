"""Helpers for the inbound tests: the shared mail corpus, hand-built mails, DKIM keys, and a
real Dovecot (with OAuth) with fresh accounts and a recording handler."""

from __future__ import annotations

import base64
import email
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import dkim
import mailparser
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpdesk.inbound.mailbox import FetchedMail, MailboxConfig, MemoryCheckpoint
from helpdesk.inbound.oauth2 import OAuth2Config
from tests.support.dovecot import DovecotServer, dovecot, oauth2_server
from tests.support.oauth2_server import OAuth2Server

# The repository's parent folder holds shared/ (the corpus is never copied in here).
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def parse_mail(raw: bytes) -> Message:
    """The Message mail-parser builds (compat32), as the ingester hands it to us.

    mail-parser 4.8 raises on a few valid files while post-processing (an epilogue it
    cannot locate); the Message it would have returned is the stdlib's, so use that.
    """
    try:
        return mailparser.parse_from_bytes(raw).message
    except AttributeError:
        return email.message_from_bytes(raw)


def corpus_file(*parts: str) -> Path:
    """A file in the shared corpus; skips the test when the corpus is not checked out."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"corpus file {path} is missing: ../shared must sit beside the checkout")
    return path


def corpus_mail(*parts: str) -> Message:
    """A corpus file, parsed."""
    return parse_mail(corpus_file(*parts).read_bytes())


def corpus_json(*parts: str) -> Any:
    """A corpus expectation file."""
    with corpus_file(*parts).open(encoding="utf-8") as handle:
        return json.load(handle)


def mail_files(folder: str) -> list[Path]:
    """Every mail a corpus folder lists in its INDEX.tsv (one row per mail file)."""
    index = corpus_file(folder, "INDEX.tsv")
    rows = index.read_text(encoding="utf-8").splitlines()[1:]
    return [index.parent / row.split("\t", 1)[0] for row in rows if row.strip()]


def build_mail(headers: dict[str, str] | list[tuple[str, str]], body: str = "Hello\n") -> Message:
    """A mail from header pairs and a body, parsed like inbound mail."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    text = "".join(f"{name}: {value}\r\n" for name, value in pairs) + "\r\n" + body
    return parse_mail(text.encode("utf-8"))


# -- DKIM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair for signing test mail, and its DKIM TXT record."""

    private_pem: bytes
    txt: str


def make_key(bits: int = 2048) -> SigningKey:
    """A fresh RSA key pair in the forms dkimpy and DNS want."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private_pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode())


@pytest.fixture(scope="session")
def dkim_key() -> SigningKey:
    """One 2048-bit key for the whole run (generating keys is the slow part)."""
    return make_key()


def sign(
    raw: bytes, key: SigningKey, domain: str, headers: list[str], selector: str = "s1"
) -> bytes:
    """``raw`` with a DKIM-Signature of ``domain`` over ``headers`` prepended, as a
    signing server would."""
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[h.encode() for h in headers],
    )
    return signature + raw


def write_overrides(path: Path, records: dict[str, str | list[str]]) -> Path:
    """A HELPDESK_DKIM_TXT_OVERRIDES file holding ``records``."""
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


# -- IMAP ------------------------------------------------------------------------------

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


@dataclass
class PipelinedRecorder(Recorder):
    """The same, taking whole batches through ``submit_batch`` (handled in a thread of its
    own, as the process pool does) and ``make_durable``; ``events`` lists the calls."""

    events: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pool = ThreadPoolExecutor(max_workers=1)

    def submit_batch(self, mails: list[FetchedMail]) -> _Handled:
        """Start handling ``mails`` in the recorder's thread."""
        self.events.append(("submit", [m.uid for m in mails]))
        return _Handled(self.pool.submit(self._handle_all, mails))

    def _handle_all(self, mails: list[FetchedMail]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for mail in mails:
            try:
                self(mail)
                results.append(None)
            except Exception as error:
                results.append(error)
        return results

    def make_durable(self) -> None:
        """Record the call."""
        self.events.append(("durable",))


@dataclass
class _Handled:
    future: Future

    def results(self) -> list[BaseException | None]:
        return self.future.result(timeout=30)


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording handler."""
    return Recorder()


@pytest.fixture
def pipelined_recorder():
    """A fresh recording batch handler (submit_batch/make_durable)."""
    handler = PipelinedRecorder()
    yield handler
    handler.pool.shutdown(wait=True)


@pytest.fixture
def checkpoint() -> MemoryCheckpoint:
    """An empty in-memory checkpoint."""
    return MemoryCheckpoint()
