"""The ticket API: bearer tokens, JSON errors with a reason, keyset pages."""

from __future__ import annotations

from helpdesk.agents import issue_api_token, revoke_api_token


def _headers(token):
    return {"Authorization": f"Bearer {token}"}


def test_requests_without_a_valid_token_get_a_json_401(client, session, make_user):
    user = make_user()
    token = issue_api_token(user.id)
    session.commit()
    for headers in ({}, {"Authorization": "Basic abc"}, _headers("hd_unknown"), _headers("x")):
        response = client.get("/api/v1/tickets", headers=headers)
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"
        assert response.json["reason"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/tickets", headers=_headers(token)).status_code == 200


def test_a_revoked_token_stops_working(client, session, make_user):
    from helpdesk.models import ApiToken

    user = make_user()
    token = issue_api_token(user.id, name="script")
    session.commit()
    row = session.query(ApiToken).one()
    revoke_api_token(row.id)
    session.commit()
    assert client.get("/api/v1/tickets", headers=_headers(token)).status_code == 401


def test_bad_parameters_get_a_json_error_naming_the_field(client, session, make_user):
    user = make_user()
    token = issue_api_token(user.id)
    session.commit()
    response = client.get("/api/v1/tickets?status=lost", headers=_headers(token))
    assert response.status_code == 400
    assert response.json["field"] == "status"
    assert "status must be one of" in response.json["reason"]
    missing = client.get("/api/v1/nothing-here", headers=_headers(token))
    assert missing.status_code == 404
    assert missing.json["error"] == "not found"


def test_listing_pages_through_every_visible_ticket_once(client, session, make_user, make_ticket):
    user = make_user()
    token = issue_api_token(user.id)
    created = {make_ticket().number for _ in range(120)}
    session.commit()
    seen: list[int] = []
    url = "/api/v1/tickets"
    while url:
        body = client.get(url, headers=_headers(token)).json
        seen.extend(t["number"] for t in body["tickets"])
        url = f"/api/v1/tickets?cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))


def test_ticket_detail_has_the_thread(client, session, make_user, make_ticket):
    user = make_user()
    token = issue_api_token(user.id)
    ticket = make_ticket(subject="Visa letter", body="Could you send the letter?")
    session.commit()
    body = client.get(f"/api/v1/tickets/{ticket.number}", headers=_headers(token)).json
    assert body["subject"] == "Visa letter"
    assert body["status"] == "new"
    assert body["messages"][0]["direction"] == "inbound"
    assert body["messages"][0]["text"] == "Could you send the letter?"
