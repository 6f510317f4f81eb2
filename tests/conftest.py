"""Test fixtures: real PostgreSQL and SQLite, one app per database, a SAVEPOINT per test.

Every test that uses ``app`` (or anything built on it) runs twice, once per database;
pytest shows which in the test id (``[sqlite]`` / ``[postgresql]``).
"""

from __future__ import annotations

import contextvars
import ipaddress
import itertools
import os
import re
import secrets
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from helpdesk.config import setting_variables

TEST_PASSWORD = "correct horse battery staple"
# A cheap hash for test users: production uses werkzeug's default (scrypt).
TEST_PASSWORD_HASH = generate_password_hash(TEST_PASSWORD, method="pbkdf2:sha256:1000")
POSTGRES_SERVER = os.environ.get("HELPDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("HELPDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# The developer's own settings must not leak into tests.
for _variable in setting_variables():
    os.environ.pop(_variable, None)


def pytest_terminal_summary(terminalreporter) -> None:
    """Say how many tests ran on each database, so a run shows both were exercised."""
    counts: dict[str, Counter] = {"sqlite": Counter(), "postgresql": Counter(), "none": Counter()}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            match = re.search(r"\[(sqlite|postgresql)\b", report.nodeid)
            counts[match.group(1) if match else "none"][outcome] += 1
    terminalreporter.section("tests per database")
    for database, counter in counts.items():
        label = database if database != "none" else "no database"
        details = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counter.items())) or "none"
        terminalreporter.write_line(f"{label:12} {details}")


# -- loopback-only guard ----------------------------------------------------------------


class NetworkBlocked(ConnectionRefusedError):
    """A test tried to reach something other than this machine."""


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in ("localhost", "", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that opens a connection (or DNS query) to a non-loopback host."""
    violations: list[str] = []

    def check(address: object) -> None:
        if isinstance(address, str | bytes):  # AF_UNIX path
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_loopback(host):
            violations.append(repr(address))
            raise NetworkBlocked(f"tests may only connect to loopback, not {address!r}")

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family != socket.AF_UNIX:
            check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family != socket.AF_UNIX:
            check(address)
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        check(args[-1])
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback(name):
            violations.append(repr(name))
            raise NetworkBlocked(f"tests may only resolve loopback names, not {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    # Also fail when the code under test caught the error and carried on.
    if violations:
        pytest.fail(f"test tried to leave loopback: {', '.join(violations)}")


# -- databases --------------------------------------------------------------------------


def create_postgres_database(prefix: str = "helpdesk_test") -> str:
    """Create an empty PostgreSQL database for this run; return its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.exit(f"PostgreSQL at {POSTGRES_SERVER} is not reachable: {error}", returncode=3)
    return f"{POSTGRES_SERVER}/{name}"


def drop_postgres_database(url: str) -> None:
    """Drop a database made by create_postgres_database, closing its connections."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the whole run, dropped at the end."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def base_config(instance: Path, database_url: str) -> dict:
    """Settings for a test app (no environment is read beyond these)."""
    return {
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_SECRET_KEY": "test-secret-" + "x" * 40,
        "HELPDESK_BASE_URL": "http://helpdesk.test",
        "TESTING": True,
        "HELPDESK_JOBS_RAISE": True,
    }


def database_url_for(kind: str, instance: Path, postgres_url: str) -> str:
    """The database URL of a test app on ``kind`` (sqlite or postgresql)."""
    if kind == "sqlite":
        return f"sqlite:///{instance / 'test.sqlite3'}"
    return postgres_url


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    Tests keep an app context pushed to call services; a request made inside it would
    otherwise share that context's ``g`` and database session.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory, postgres_url) -> Iterator[Flask]:
    """The application on SQLite and on PostgreSQL, migrated to head."""
    from flask_migrate import upgrade

    from helpdesk import create_app
    from helpdesk.extensions import db

    kind = request.param
    instance = tmp_path_factory.mktemp(f"instance-{kind}")
    application = create_app(base_config(instance, database_url_for(kind, instance, postgres_url)))
    application.test_client_class = IsolatedClient
    application.config["TEST_DATABASE"] = kind
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def session(app: Flask):
    """The database session, inside an outer transaction rolled back after the test.

    Service code commits as usual; on this connection a commit releases a SAVEPOINT.
    """
    from helpdesk.extensions import db, limiter
    from helpdesk.inbound.directory import invalidate as invalidate_directory

    ctx = app.app_context()
    ctx.push()
    connection = db.engine.connect()
    outer = connection.begin()
    db.session.remove()
    db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    # Committees of earlier tests were rolled back: forget what the ingester cached.
    invalidate_directory()
    try:
        yield db.session
    finally:
        db.session.remove()
        outer.rollback()
        connection.close()
        db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")
        limiter.reset()
        ctx.pop()


@pytest.fixture
def client(app: Flask, session) -> FlaskClient:
    """A test client sharing the test's transaction."""
    return app.test_client()


# -- really committed databases, for work done by other processes ---------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_app(request, tmp_path):
    """An app on its own, really committed database (for work done by other processes)."""
    from flask_migrate import upgrade

    from helpdesk import create_app
    from helpdesk.extensions import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'committed.sqlite3'}"
    else:
        url = create_postgres_database("helpdesk_committed")
    config = base_config(tmp_path, url)
    application = create_app(config)
    with application.app_context():
        upgrade()
    application.config["TEST_DATABASE"] = request.param
    application.config["TEST_ENV"] = {
        k: str(v) for k, v in config.items() if k.startswith("HELPDESK_")
    }
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def helpdesk_env(app: Flask, **extra: str) -> dict[str, str]:
    """The environment a `helpdesk` subprocess needs to work on ``app``'s database."""
    env = {k: v for k, v in os.environ.items() if k not in setting_variables()}
    env.update(app.config["TEST_ENV"], PYTHONPATH=str(ROOT), **extra)
    return env


# -- factories ----------------------------------------------------------------------------

_serial = itertools.count(1)


@pytest.fixture
def make_committee(session):
    """Create a committee: ``make_committee(visibility="private", slug=..., triage=...)``."""
    from helpdesk.committees import add_committee

    def make(slug: str | None = None, visibility: str = "open", **kwargs):
        slug = slug or f"committee-{next(_serial)}"
        kwargs.setdefault("mail_addresses", [f"{slug}@conference.test"])
        return add_committee(
            slug, kwargs.pop("name", slug.title()), visibility=visibility, **kwargs
        )

    return make


@pytest.fixture
def make_user(session):
    """Create an agent with TEST_PASSWORD: ``make_user(admin=True, committees=[(c, "lead")])``."""
    from helpdesk.agents import create_agent
    from helpdesk.committees import set_membership

    def make(email: str | None = None, name: str | None = None, *, admin=False, committees=()):
        n = next(_serial)
        user = create_agent(email or f"agent{n}@conference.test", name or f"Agent {n}", admin=admin)
        user.password_hash = TEST_PASSWORD_HASH
        for entry in committees:
            committee, role = entry if isinstance(entry, tuple) else (entry, "member")
            set_membership(committee.id, user.id, role)
        session.flush()
        return user

    return make


@pytest.fixture
def make_ticket(session, make_committee):
    """Create a ticket with one inbound message:
    ``make_ticket(committee=c, subject=..., body=..., recused=[user], attachment=b"...")``."""
    from helpdesk import contacts, search_index, tickets
    from helpdesk.models import Attachment, Direction
    from helpdesk.storage import attachment_store

    def make(
        committee=None,
        subject: str | None = None,
        *,
        body: str = "Hello, I have a question.",
        contact_email: str | None = None,
        recused=(),
        attachment: bytes | None = None,
        status: str | None = None,
    ):
        n = next(_serial)
        committee = committee or make_committee()
        contact = contacts.get_or_create_contact(
            contact_email or f"person{n}@example.com", f"Person {n}"
        )
        ticket = tickets.create_ticket(
            committee.id, subject or f"Question {n}", contact_id=contact.id
        )
        message = tickets.add_message(
            ticket.id,
            Direction.INBOUND,
            text=body,
            subject=ticket.subject,
            from_address=contact.email,
            from_name=contact.name,
            to_addresses=committee.address_list,
            message_id=f"msg{n}@example.com",
        )
        if attachment is not None:
            sha = attachment_store().put(attachment)
            message.attachments.append(
                Attachment(
                    sha256=sha,
                    filename=f"file{n}.pdf",
                    content_type="application/pdf",
                    size=len(attachment),
                    storage_key=attachment_store().key_for(sha),
                )
            )
        for user in recused:
            tickets.recuse(ticket.id, user.id)
        if status:
            tickets.set_status(ticket.id, status)
        session.flush()
        # Other sessions on this connection (test requests) search the written documents.
        search_index.write_pending()
        return ticket

    return make


# -- Discord --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def discord_stand_in():
    """The local Discord webhook stand-in, for the whole run."""
    from tests.support.discord_server import DiscordStandIn

    server = DiscordStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def discord(app: Flask, discord_stand_in, monkeypatch: pytest.MonkeyPatch):
    """The stand-in, emptied, with the app posting to it for this test."""
    discord_stand_in.reset()
    monkeypatch.setitem(app.config, "HELPDESK_DISCORD_API_URL", discord_stand_in.url)
    return discord_stand_in
