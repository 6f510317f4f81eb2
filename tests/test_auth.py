"""Logging in and out: hashed passwords, CSRF on every form, throttling, cookie flags."""

from __future__ import annotations

import pytest

from helpdesk.agents import authenticate, set_password
from tests.conftest import TEST_PASSWORD
from tests.helpers import csrf_token, login


def test_the_login_page_is_served(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.get_data(as_text=True)


def test_passwords_are_stored_hashed(session, make_user):
    from helpdesk.agents import create_agent

    user = create_agent("hashed@conference.test", "Hashed", password="a long secret phrase")
    assert "a long secret phrase" not in user.password_hash
    assert user.password_hash.startswith("scrypt:")
    assert authenticate("HASHED@conference.test", "a long secret phrase") is user
    assert authenticate("hashed@conference.test", "wrong password!") is None


def test_login_and_logout(client, make_user, session):
    user = make_user()
    session.commit()
    login(client, user)
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client, make_user, session
):
    user = make_user()
    session.commit()
    token = csrf_token(client)
    wrong_password = client.post(
        "/login", data={"email": user.email, "password": "nope-nope-nope", "csrf_token": token}
    )
    unknown_user = client.post(
        "/login",
        data={"email": "ghost@conference.test", "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "Wrong e-mail or password." in wrong_password.get_data(as_text=True)
    assert "Wrong e-mail or password." in unknown_user.get_data(as_text=True)


def test_forms_without_a_csrf_token_are_refused(client, make_user, session):
    user = make_user()
    session.commit()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 400
    login(client, user)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_failed_logins_are_throttled_per_account(client, make_user, session, app):
    user = make_user()
    session.commit()
    token = csrf_token(client)
    limit = int(app.config["HELPDESK_LOGIN_RATE"].split("/")[0])
    for _ in range(limit):
        response = client.post(
            "/login", data={"email": user.email, "password": "wrong-wrong", "csrf_token": token}
        )
        assert response.status_code == 401
    blocked = client.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


def test_failed_logins_are_throttled_per_client_address(client, make_user, session, app):
    users = [make_user() for _ in range(3)]
    session.commit()
    token = csrf_token(client)
    limit = int(app.config["HELPDESK_LOGIN_RATE"].split("/")[0])
    statuses = [
        client.post(
            "/login",
            data={"email": users[i % 3].email, "password": "wrong-wrong", "csrf_token": token},
        ).status_code
        for i in range(limit + 1)
    ]
    assert statuses[:limit] == [401] * limit
    assert statuses[limit] == 429


def test_successful_logins_do_not_count_against_the_limit(client, make_user, session, app):
    user = make_user()
    session.commit()
    limit = int(app.config["HELPDESK_LOGIN_RATE"].split("/")[0])
    for _ in range(limit + 2):
        login(client, user)
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_session_cookie_is_httponly_and_samesite(client, make_user, session):
    user = make_user()
    session.commit()
    response = login(client, user)
    cookies = response.headers.getlist("Set-Cookie")
    cookie = next(c for c in cookies if c.startswith("helpdesk_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the test base URL is http


def test_changing_the_password_ends_other_sessions(client, make_user, session):
    user = make_user()
    session.commit()
    login(client, user)
    set_password(user.id, "a brand new password")
    session.commit()
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/queues/", "/queues/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_login_only_redirects_within_the_site(client, make_user, session, target, expected):
    user = make_user()
    session.commit()
    token = csrf_token(client)
    response = client.post(
        f"/login?next={target}",
        data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == expected


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
