"""The API keys page: admins only, CSRF forms, the key shown once, scopes, limits, revoking."""

from __future__ import annotations

import re

import sqlalchemy as sa

from helpdesk.models import ApiToken
from tests.helpers import csrf_token, login

PAGE = "/outbound/api-keys"
_KEY = re.compile(r'<code id="new-api-key"[^>]*>([^<]+)</code>')


def _send(client, token):
    return client.post(
        "/api/v1/messages",
        json={"to": "a@example.net", "subject": "s", "text": "t", "from": "x@conference.test"},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_only_admins_reach_the_page(client, session, make_user):
    assert client.get(PAGE).status_code == 302  # to the login page
    login(client, make_user())
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"name": "x"}).status_code in (400, 403)
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_an_admin_issues_a_key_shown_once_that_works_with_its_scopes(
    client, session, make_user, make_committee
):
    make_committee("office", mail_addresses=["x@conference.test"])
    admin = make_user(admin=True)
    owner = make_user()
    login(client, admin)
    response = client.post(
        PAGE,
        data={
            "csrf_token": csrf_token(client, PAGE),
            "name": "registration desk",
            "owner": owner.email,
            "scopes": ["messages:send"],
            "rate_limit": "5/second;100/hour",
        },
    )
    assert response.status_code == 200
    token = _KEY.search(response.get_data(as_text=True)).group(1)
    row = session.scalars(sa.select(ApiToken)).one()
    assert row.user_id == owner.id
    assert row.scopes == ["messages:send"]
    assert row.rate_limit == "5/second;100/hour"
    assert row.token_hash != token
    assert token.startswith(row.prefix)
    listing = client.get(PAGE).get_data(as_text=True)
    assert token not in listing
    assert row.prefix in listing
    assert _send(client, token).status_code == 202


def test_a_bad_rate_limit_or_owner_is_reported_and_nothing_issued(client, session, make_user):
    login(client, make_user(admin=True))
    for data, message in (
        ({"rate_limit": "fast"}, "is not a rate"),
        ({"owner": "nobody@conference.test"}, "no agent"),
    ):
        response = client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE), **data})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_forms_without_a_csrf_token_are_refused(client, session, make_user):
    login(client, make_user(admin=True))
    assert client.post(PAGE, data={"name": "x"}).status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_a_revoked_key_stops_working(client, session, make_user):
    admin = make_user(admin=True)
    login(client, admin)
    page = client.post(
        PAGE,
        data={"csrf_token": csrf_token(client, PAGE), "scopes": ["messages:send"]},
    )
    token = _KEY.search(page.get_data(as_text=True)).group(1)
    key_id = session.scalar(sa.select(ApiToken.id))
    assert client.post(f"{PAGE}/{key_id}/revoke").status_code == 400  # no CSRF token
    response = client.post(f"{PAGE}/{key_id}/revoke", data={"csrf_token": csrf_token(client, PAGE)})
    assert response.status_code == 302
    assert _send(client, token).status_code == 401
    assert "revoked" in client.get(PAGE).get_data(as_text=True)


def test_the_api_token_command_grants_scopes_and_a_rate_limit(app, session):
    from tests.test_cli import invoke

    invoke(app, "create-agent", "svc@conference.test", "--name", "Service")
    result = invoke(
        app,
        "api-token",
        "svc@conference.test",
        "--scope",
        "messages:send",
        "--scope",
        "messages:read",
        "--rate-limit",
        "3/second",
    )
    assert result.exit_code == 0, result.output
    row = session.scalars(sa.select(ApiToken)).one()
    assert row.scopes == ["messages:read", "messages:send"]
    assert row.rate_limit == "3/second"
    refused = invoke(app, "api-token", "svc@conference.test", "--rate-limit", "lots")
    assert refused.exit_code == 2
    assert "--rate-limit" in refused.output
