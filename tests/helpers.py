"""Helpers for driving the web app from tests."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="[^"]*">')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``."""
    response = client.get(path)
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, user, password: str = TEST_PASSWORD):
    """Log ``user`` in through the login form; returns the response."""
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def without_csrf(html: str) -> str:
    """Page text with the per-request CSRF token removed, for comparing two pages."""
    return _CSRF_META.sub("", _CSRF.sub('name="csrf_token" value=""', html))
