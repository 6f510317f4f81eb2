"""Invitations and password resets by mail: signed links that expire and work once, and a
reset form that never tells whether an address has an account."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from helpdesk import agents, password_links
from helpdesk.extensions import db
from helpdesk.models import AuditEvent, OutboundMessage, User
from tests.helpers import csrf_token, login, without_csrf

NEW_PASSWORD = "a much better passphrase"


def _mails_to(address: str) -> list[OutboundMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.to_key == address)
            .order_by(OutboundMessage.id)
        )
    )


def _link(mail: OutboundMessage) -> str:
    match = re.search(r"http://helpdesk\.test(/\S+)", mail.text)
    assert match, mail.text
    return match.group(1)


def _made_earlier(monkeypatch, seconds: float):
    """Make tokens as if ``seconds`` ago (itsdangerous stamps them with time.time())."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - seconds)
    return lambda: monkeypatch.setattr(time, "time", real)


def test_an_invited_agent_sets_name_and_password_once(app, client, session, make_user):
    admin = make_user(admin=True)
    session.commit()
    login(client, admin)
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={"email": "New.Person@Example.org", "name": "", "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    user = session.scalar(sa.select(User).where(User.email == "new.person@example.org"))
    assert user.password_hash is None
    (mail,) = _mails_to("new.person@example.org")
    assert mail.status.value == "sent"
    assert mail.from_addr == "helpdesk@helpdesk.test"
    link = _link(mail)
    assert link.startswith("/invitation/")
    # Nobody can log in to an invited account before the password is chosen.
    assert agents.authenticate("new.person@example.org", "") is None

    invitee = app.test_client()
    page = invitee.get(link)
    assert page.status_code == 200
    assert "new.person@example.org" in page.get_data(as_text=True)
    form_token = csrf_token(invitee, link)
    short = invitee.post(
        link,
        data={"name": "Nova", "password": "short", "confirm": "short", "csrf_token": form_token},
    )
    assert "at least 10 characters" in short.get_data(as_text=True)
    differ = invitee.post(
        link,
        data={
            "name": "Nova",
            "password": NEW_PASSWORD,
            "confirm": "other",
            "csrf_token": form_token,
        },
    )
    assert "differ" in differ.get_data(as_text=True)
    done = invitee.post(
        link,
        data={
            "name": "Nova Person",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": form_token,
        },
    )
    assert done.status_code == 302
    assert invitee.get("/").status_code == 200  # logged in
    session.expire_all()
    assert session.get(User, user.id).name == "Nova Person"
    assert agents.authenticate("new.person@example.org", NEW_PASSWORD) is not None
    # The link worked once.
    again = app.test_client().get(link)
    assert again.status_code == 404
    assert "not valid any more" in again.get_data(as_text=True)
    actions = [
        e.action
        for e in session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_user_id == user.id)
            .order_by(AuditEvent.id)
        )
    ]
    assert actions == [
        "agent.created",
        "agent.invited",
        "agent.password_set",
        "agent.invitation_accepted",
    ]


def test_an_invitation_expires(app, session, make_user, monkeypatch):
    user = agents.create_agent("late@example.org", "Late")
    session.flush()
    days = app.config["HELPDESK_INVITATION_DAYS"]
    restore = _made_earlier(monkeypatch, days * 86400 + 60)
    old = password_links.make_token(user, password_links.INVITATION)
    restore()
    fresh = password_links.make_token(user, password_links.INVITATION)
    with pytest.raises(password_links.InvalidLink):
        password_links.user_for_token(old, password_links.INVITATION)
    assert password_links.user_for_token(fresh, password_links.INVITATION).id == user.id
    # A token of one purpose is worthless for the other, and forgeries are refused.
    with pytest.raises(password_links.InvalidLink):
        password_links.user_for_token(fresh, password_links.PASSWORD_RESET)
    with pytest.raises(password_links.InvalidLink):
        password_links.user_for_token(fresh[:-2] + "xx", password_links.INVITATION)


def test_a_deactivated_invitee_cannot_use_the_link(session):
    user = password_links.invite("gone@example.org", "Gone")
    session.flush()
    token = password_links.make_token(user, password_links.INVITATION)
    agents.set_active(user.id, False)
    with pytest.raises(password_links.InvalidLink):
        password_links.user_for_token(token, password_links.INVITATION)


def test_password_reset_works_once_and_ends_other_sessions(app, client, session, make_user):
    user = make_user("forgetful@example.org")
    session.commit()
    other_session = app.test_client()
    login(other_session, user)
    token = csrf_token(client, "/password/reset")
    page = client.post(
        "/password/reset", data={"email": "Forgetful@Example.org", "csrf_token": token}
    )
    assert page.status_code == 200
    assert "If an account has this address" in page.get_data(as_text=True)
    (mail,) = _mails_to("forgetful@example.org")
    link = _link(mail)
    assert link.startswith("/password/reset/")
    form_token = csrf_token(client, link)
    done = client.post(
        link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": form_token}
    )
    assert done.status_code == 302
    session.expire_all()
    assert agents.authenticate("forgetful@example.org", NEW_PASSWORD) is not None
    # Older sessions end; the link does not work a second time.
    assert other_session.get("/").status_code == 302
    assert app.test_client().get(link).status_code == 404
    replay = client.post(
        link,
        data={
            "password": "yet another passphrase",
            "confirm": "yet another passphrase",
            "csrf_token": form_token,
        },
    )
    assert replay.status_code == 404
    session.expire_all()
    assert agents.authenticate("forgetful@example.org", NEW_PASSWORD) is not None


def test_a_reset_link_expires(app, session, make_user, monkeypatch):
    user = make_user()
    session.flush()
    minutes = app.config["HELPDESK_PASSWORD_RESET_MINUTES"]
    restore = _made_earlier(monkeypatch, minutes * 60 + 5)
    old = password_links.make_token(user, password_links.PASSWORD_RESET)
    restore()
    with pytest.raises(password_links.InvalidLink):
        password_links.reset_password(old, NEW_PASSWORD)
    restore = _made_earlier(monkeypatch, minutes * 60 - 30)
    recent = password_links.make_token(user, password_links.PASSWORD_RESET)
    restore()
    assert password_links.reset_password(recent, NEW_PASSWORD).id == user.id


def test_the_reset_form_does_not_reveal_which_addresses_exist(app, session, make_user):
    user = make_user("known@example.org")
    inactive = make_user("inactive@example.org")
    agents.set_active(inactive.id, False)
    session.commit()
    pages = []
    for address in ("known@example.org", "unknown@example.org", "inactive@example.org", "x"):
        visitor = app.test_client()
        token = csrf_token(visitor, "/password/reset")
        response = visitor.post("/password/reset", data={"email": address, "csrf_token": token})
        assert response.status_code == 200
        pages.append(without_csrf(response.get_data(as_text=True)))
    assert len(set(pages)) == 1
    assert len(_mails_to("known@example.org")) == 1
    assert _mails_to("unknown@example.org") == _mails_to("inactive@example.org") == []
    assert user.email == "known@example.org"


def test_the_login_page_offers_the_reset(client, session):
    assert 'href="/password/reset"' in client.get("/login").get_data(as_text=True)
