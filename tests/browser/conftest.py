"""Browser tests: Debian's Chromium driven by playwright against a live server.

The live server is the real application on a loopback port, against a database that
really commits (a fresh SQLite file or PostgreSQL database per module and kind), with
jobs inline and the files mail backend, so a sent reply is an .eml file in its outbox.
Chromium runs headless and offline; a loopback proxy that refuses everything counts the
requests that try to leave the machine.
"""

from __future__ import annotations

import itertools
import os
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import (
    TEST_PASSWORD,
    TEST_PASSWORD_HASH,
    base_config,
    create_postgres_database,
    drop_postgres_database,
)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_serial = itertools.count(1)


def chromium_args(proxy_port: int) -> list[str]:
    """Flags that keep Chromium quiet, offline, and every frame's requests visible."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Sandboxed srcdoc frames run in their own process otherwise, unseen by page.route.
        "--disable-site-isolation-trials",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        # Loopback bypasses the proxy; everything else reaches the refusing proxy below.
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
    ]


class _RefusingProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RefuseHandler)
        self.requests_seen: list[str] = []
        self.lock = threading.Lock()


class _RefuseHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1").strip()
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.requests_seen.append(line)  # type: ignore[attr-defined]
        self.wfile.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        """Requests are not logged: a failing test shows its own story."""


@pytest.fixture(scope="session")
def refusing_proxy() -> Iterator[_RefusingProxy]:
    """A loopback HTTP proxy that answers 403 to everything and records each request."""
    proxy = _RefusingProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


@pytest.fixture(scope="session")
def browser(refusing_proxy):
    """Headless Chromium from Debian (never a downloaded browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]' installs it")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (./scripts/test installs it)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(refusing_proxy.server_address[1]),
        )
        yield instance
        instance.close()


@dataclass
class LiveServer:
    """The application served on loopback, with helpers to set up data in it."""

    url: str
    app: Flask
    kind: str
    outbox: Path
    users: dict[str, object] = field(default_factory=dict)

    def outbox_files(self) -> set[Path]:
        """The .eml files written so far."""
        return set(self.outbox.glob("*.eml"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_server(request, tmp_path_factory, postgres_url) -> Iterator[LiveServer]:
    """The app on a free loopback port against its own, really committed database."""
    from flask_migrate import upgrade

    from helpdesk import create_app
    from helpdesk.extensions import db

    kind = request.param
    instance = tmp_path_factory.mktemp(f"live-{kind}")
    if kind == "sqlite":
        url = f"sqlite:///{instance / 'live.sqlite3'}"
    else:
        url = create_postgres_database("helpdesk_live")
    config = base_config(instance, url)
    config["HELPDESK_JOBS_RAISE"] = False  # as in production: a failed job is recorded
    app = create_app(config)
    with app.app_context():
        upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(
            f"http://127.0.0.1:{server.server_port}",
            app,
            kind,
            Path(app.config["HELPDESK_OUTBOX_PATH"]),
        )
    finally:
        server.shutdown()
        server.server_close()
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
        if kind == "postgresql":
            drop_postgres_database(url)


@dataclass
class Scene:
    """Data made in the live server's database for one test."""

    committee: object
    agents: list
    tickets: list


@pytest.fixture
def scene(live_server: LiveServer):
    """Make ``scene(visibility=..., agents=2, tickets=2)``: a committee with its own agents
    and tickets, committed for real. Each call uses new names."""
    from helpdesk import agents, committees, contacts, tickets
    from helpdesk.extensions import db
    from helpdesk.models import Direction

    def make(*, visibility: str = "open", agent_count: int = 2, ticket_count: int = 2, body=None):
        n = next(_serial)
        with live_server.app.app_context():
            committee = committees.add_committee(
                f"queue-{n}",
                f"Queue {n}",
                visibility=visibility,
                mail_addresses=[f"queue-{n}@conference.test"],
            )
            names = ["Ada Lovelace", "Bruno Program", "Chiara Grants", "Dami Diversity"]
            made_agents = []
            for i in range(agent_count):
                agent = agents.create_agent(f"agent{n}-{i}@conference.test", names[i])
                agent.password_hash = TEST_PASSWORD_HASH
                committees.set_membership(committee.id, agent.id, "member")
                made_agents.append(agent)
            made_tickets = []
            for i in range(ticket_count):
                contact = contacts.get_or_create_contact(
                    f"person{n}-{i}@example.org", f"Person {n}-{i}"
                )
                ticket = tickets.create_ticket(
                    committee.id, f"Question {n}-{i} about visas", contact_id=contact.id
                )
                tickets.add_message(
                    ticket.id,
                    Direction.INBOUND,
                    text=body or f"Hello,\n\ncould you help with question {i}?\n\nThanks",
                    subject=ticket.subject,
                    from_address=contact.email,
                    from_name=contact.name,
                    to_addresses=committee.address_list,
                    message_id=f"question-{n}-{i}@example.org",
                )
                made_tickets.append(ticket)
            db.session.commit()
            result = Scene(
                committee=_plain(committee, "id", "slug", "name"),
                agents=[_plain(a, "id", "email", "name") for a in made_agents],
                tickets=[_plain(t, "id", "number", "subject") for t in made_tickets],
            )
            db.session.remove()
        return result

    return make


@dataclass(frozen=True)
class Plain:
    """Detached values of a row, usable after its session is gone."""

    values: dict

    def __getattr__(self, name: str):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _plain(row, *names: str) -> Plain:
    return Plain({name: getattr(row, name) for name in names})


def log_in(page, live_server: LiveServer, email: str) -> None:
    """Log an agent in through the login form."""
    page.goto(f"{live_server.url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")


def enhanced(page) -> None:
    """Wait until the page's JavaScript listens (navigations commit before scripts run)."""
    page.locator("html[data-enhanced]").wait_for(state="attached")


def screenshot(page, name: str, tmp_path: Path) -> Path:
    """Save a PNG of the page: into docs/screenshots with HELPDESK_SCREENSHOTS=1, else tmp."""
    folder = SCREENSHOTS if os.environ.get("HELPDESK_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def context(browser, live_server):
    """A fresh browser context (cookies, storage) per test, closed after it."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    yield ctx
    ctx.close()
