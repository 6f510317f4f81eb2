"""Latency of the agents' pages on a conference-sized PostgreSQL database.

Run from the project root: ``python -m bench.web [--requests 200] [--keep]``.
Creates a fresh database, fills it with 100,000 tickets and 500,000 messages by set-based
INSERT ... SELECT (about a minute), starts gunicorn on a loopback port, logs an agent in
and times requests of the dashboard, a committee queue, full-text searches (a rare word
or a contact's address; and, as the worst case, a word nearly every ticket contains) and
ticket pages through real HTTP. Prints p50/p95 per page; targets are p95 <= 100 ms
(search <= 300 ms).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from bench.web_data import CONTACTS, MESSAGES_PER_TICKET, RARE_WORDS, TICKETS, WORDS, fill

SERVER = os.environ.get("HELPDESK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
TARGETS = {"dashboard": 100, "queue": 100, "search": 300, "search-common": 300, "ticket": 100}
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway account in a throwaway database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A logged-in agent over one keep-alive HTTP connection."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        """One request; returns status and body."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text

    def log_in(self, email: str) -> None:
        """Log in through the form."""
        _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        status, _ = self.request(
            "POST", "/login", {"email": email, "password": PASSWORD, "csrf_token": token}
        )
        if status != 302:
            raise SystemExit(f"login failed: {status}")


def _bench_agent(url: str) -> tuple[str, list[str], list[int]]:
    """An agent who is a member of several committees, their queues and readable tickets."""
    from werkzeug.security import generate_password_hash

    with psycopg.connect(url, autocommit=True) as conn:
        user_id, email = conn.execute(
            "SELECT u.id, u.email FROM users u JOIN memberships m ON m.user_id = u.id "
            "JOIN committees c ON c.id = m.committee_id WHERE c.visibility = 'private' "
            "ORDER BY u.id LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s",
            (generate_password_hash(PASSWORD), user_id),
        )
        slugs = [
            r[0]
            for r in conn.execute(
                "SELECT c.slug FROM committees c JOIN memberships m ON m.committee_id = c.id "
                "WHERE m.user_id = %s ORDER BY c.slug",
                (user_id,),
            )
        ]
        numbers = [
            r[0]
            for r in conn.execute(
                "SELECT t.number FROM tickets t JOIN committees c ON c.id = t.committee_id "
                "WHERE c.visibility = 'open' OR c.slug = ANY(%s) ORDER BY random() LIMIT 400",
                (slugs,),
            )
        ]
    return email, slugs, numbers


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(port: int, url: str, requests: int) -> dict[str, list[float]]:
    """Time ``requests`` requests of each page."""
    email, slugs, numbers = _bench_agent(url)
    client = Client(port)
    client.log_in(email)
    rng = random.Random(7)
    pages = {
        "dashboard": lambda i: "/",
        "queue": lambda i: f"/queues/{slugs[i % len(slugs)]}",
        # A rare word, or a contact's address (what agents look up most).
        "search": lambda i: (
            "/search?"
            + urlencode(
                {"q": rng.choice(RARE_WORDS) if i % 2 else f"person{rng.randint(1, CONTACTS)}@"}
            )
        ),
        # A word nearly every ticket has: the worst case.
        "search-common": lambda i: "/search?" + urlencode({"q": rng.choice(WORDS)}),
        "ticket": lambda i: f"/tickets/{numbers[i % len(numbers)]}",
    }
    timings: dict[str, list[float]] = {}
    for name, path_for in pages.items():
        for i in range(10):  # warm caches and connections
            client.request("GET", path_for(i))
        timings[name] = []
        for i in range(requests):
            path = path_for(i)
            started = time.perf_counter()
            status, _ = client.request("GET", path)
            timings[name].append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise SystemExit(f"{path} answered {status}")
    return timings


def main() -> None:
    """Fill, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = f"helpdesk_bench_{secrets.token_hex(3)}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    instance = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    env = {
        **os.environ,
        "HELPDESK_DATABASE_URL": url,
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_SECRET_KEY": secrets.token_urlsafe(48),
        "HELPDESK_LOG_LEVEL": "warning",
        "HELPDESK_LOGIN_RATE": "1000/minute",
    }
    server = None
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        started = time.perf_counter()
        fill(url)
        print(
            f"filled {TICKETS:,} tickets, {TICKETS * MESSAGES_PER_TICKET:,} messages "
            f"in {time.perf_counter() - started:.1f} s"
        )
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            env=env,
            start_new_session=True,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        timings = measure(port, url, args.requests)
        for page, values in timings.items():
            p50, p95 = statistics.median(values), _percentile(values, 0.95)
            verdict = "ok" if p95 <= TARGETS[page] else "SLOW"
            print(
                f"{page:9} n={len(values)} p50={p50:6.1f} ms  p95={p95:6.1f} ms  "
                f"(target p95 <= {TARGETS[page]} ms: {verdict})"
            )
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
