"""A small OAuth 2.0 authorisation server on loopback, for XOAUTH2 tests.

It serves the two endpoints an IMAP login with OAuth needs:

- ``POST /token``: the refresh-token grant (RFC 6749 section 6), answering like Google's
  endpoint: ``{"access_token", "expires_in", "token_type"}`` or a 400/401 JSON error;
- ``POST /introspect``: token introspection (RFC 7662) for Dovecot's oauth2 passdb,
  ``{"active": true, "username": ...}`` for a live token, ``{"active": false}`` otherwise.

Tests register clients and refresh tokens, revoke them, and read how many token requests
arrived. Usable outside pytest as a context manager.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest


@dataclass
class _Grant:
    client_id: str
    username: str
    revoked: bool = False


@dataclass
class _State:
    clients: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    grants: dict[str, _Grant] = field(default_factory=dict)  # refresh token -> grant
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # access -> (user, expiry)
    expires_in: int = 3600
    token_requests: int = 0
    introspections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class OAuth2Server:
    """Token and introspection endpoints on a free loopback port."""

    def __init__(self) -> None:
        self.state = _State()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OAuth2Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on 127.0.0.1 and serve from a daemon thread."""
        state = self.state

        class Handler(_Handler):
            """The request handler, bound to this server's state."""

        Handler.state = state
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._httpd is not None, "server is not running"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def token_url(self) -> str:
        """The refresh-token endpoint."""
        return self.base_url + "/token"

    @property
    def introspection_url(self) -> str:
        """The introspection endpoint Dovecot is configured with."""
        return self.base_url + "/introspect"

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register an OAuth client."""
        with self.state.lock:
            self.state.clients[client_id] = client_secret

    def issue_refresh_token(self, client_id: str, username: str) -> str:
        """A new refresh token letting ``client_id`` act as ``username``."""
        token = "rt-" + secrets.token_urlsafe(16)
        with self.state.lock:
            self.state.grants[token] = _Grant(client_id, username)
        return token

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and every access token issued for its user."""
        with self.state.lock:
            grant = self.state.grants[refresh_token]
            grant.revoked = True
            for access, (user, _expiry) in list(self.state.tokens.items()):
                if user == grant.username:
                    del self.state.tokens[access]

    def set_expires_in(self, seconds: int) -> None:
        """Lifetime, in seconds, of access tokens issued from now on."""
        with self.state.lock:
            self.state.expires_in = seconds

    @property
    def token_requests(self) -> int:
        """How many requests the token endpoint has answered."""
        return self.state.token_requests


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        """Route the two endpoints."""
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path == "/token":
            status, body = self._token(form)
        elif self.path == "/introspect":
            status, body = self._introspect(form)
        else:
            status, body = 404, {"error": "not_found"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        state = self.state
        with state.lock:
            state.token_requests += 1
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            client_id = form.get("client_id", "")
            if state.clients.get(client_id) != form.get("client_secret") or not client_id:
                return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
            grant = state.grants.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked or grant.client_id != client_id:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            access = "at-" + secrets.token_urlsafe(24)
            state.tokens[access] = (grant.username, time.time() + state.expires_in)
            return 200, {
                "access_token": access,
                "expires_in": state.expires_in,
                "token_type": "Bearer",
                "scope": "https://mail.google.com/",
            }

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict]:
        state = self.state
        with state.lock:
            state.introspections += 1
            entry = state.tokens.get(form.get("token", ""))
            if entry is None or entry[1] < time.time():
                return 200, {"active": False}
            return 200, {"active": True, "username": entry[0]}


@pytest.fixture(scope="session")
def oauth2_server() -> Iterator[OAuth2Server]:
    """One OAuth 2.0 token and introspection server for the test session."""
    with OAuth2Server() as server:
        yield server
