"""The admin pages: who may do what (admin, lead of the committee, lead of another,
member, non-member), and that each action does it and is audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import (
    AuditEvent,
    CannedReply,
    Committee,
    Membership,
    QuarantinedMail,
    RoutingRule,
    User,
)
from tests.helpers import csrf_token, login

PERSONAS = ("admin", "lead", "lead of another", "member", "non-member")


@pytest.fixture
def club(session, make_committee, make_user):
    """A private committee with a lead and a member, another committee with its lead, an
    admin (member of nothing) and an agent of no committee."""
    private = make_committee(slug="board", name="Secret Board", visibility="private")
    other = make_committee(slug="program", name="Program")
    users = {
        "admin": make_user(admin=True),
        "lead": make_user(committees=[(private, "lead")]),
        "lead of another": make_user(committees=[(other, "lead")]),
        "member": make_user(committees=[private]),
        "non-member": make_user(),
    }
    session.commit()
    return {"private": private, "other": other, "users": users}


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


MANAGE_PAGES = ("/admin/committees/board/members", "/admin/committees/board/canned")
ADMIN_PAGES = (
    "/admin/committees/board",
    "/admin/committees/new",
    "/admin/rules",
    "/admin/rules/test",
    "/admin/mailboxes",
    "/admin/quarantine",
    "/admin/users",
)


@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_pages_answer_by_role(client, club, persona):
    login(client, club["users"][persona])
    may_manage = persona in ("admin", "lead")
    may_administer = persona in ("admin", "lead", "lead of another")
    assert client.get("/admin/").status_code == (200 if may_administer else 404)
    assert client.get("/admin/audit").status_code == (200 if may_administer else 404)
    for path in MANAGE_PAGES:
        assert client.get(path).status_code == (200 if may_manage else 404), path
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == (200 if persona == "admin" else 404), path
    committees = client.get("/admin/committees")
    assert committees.status_code == (200 if may_administer else 404)
    text = committees.get_data(as_text=True)
    assert ("Secret Board" in text) == may_manage
    # Nothing an outsider can reach names the private committee.
    if persona in ("lead of another", "non-member"):
        for path in ("/admin/", "/admin/audit", "/"):
            assert "Secret Board" not in client.get(path).get_data(as_text=True)


@pytest.mark.parametrize("persona", PERSONAS)
def test_members_are_managed_by_admins_and_the_committees_leads(client, club, session, persona):
    user = club["users"][persona]
    login(client, user)
    token = csrf_token(client, "/")
    newcomer = club["users"]["non-member"]
    response = client.post(
        "/admin/committees/board/members",
        data={"email": newcomer.email, "role": "member", "csrf_token": token},
    )
    allowed = persona in ("admin", "lead")
    assert response.status_code == (302 if allowed else 404)
    membership = session.get(
        Membership, {"user_id": newcomer.id, "committee_id": club["private"].id}
    )
    assert (membership is not None) == allowed
    if not allowed:
        return
    assert _events("membership.added")[-1].actor_id == user.id
    member = club["users"]["member"]
    path = f"/admin/committees/board/members/{member.id}"
    assert (
        client.post(f"{path}/role", data={"role": "lead", "csrf_token": token}).status_code == 302
    )
    session.expire_all()
    assert (
        session.get(
            Membership, {"user_id": member.id, "committee_id": club["private"].id}
        ).role.value
        == "lead"
    )
    assert client.post(f"{path}/remove", data={"csrf_token": token}).status_code == 302
    assert (
        session.get(Membership, {"user_id": member.id, "committee_id": club["private"].id}) is None
    )
    assert _events("membership.removed")[-1].subject_user_id == member.id
    # An unknown address is refused with a message, nothing added.
    page = client.post(
        "/admin/committees/board/members",
        data={"email": "nobody@example.org", "role": "member", "csrf_token": token},
    )
    assert page.status_code == 200
    assert "no agent has this address" in page.get_data(as_text=True)


def test_a_lead_cannot_manage_another_committee(client, club):
    login(client, club["users"]["lead"])
    token = csrf_token(client, "/")
    for path in ("/admin/committees/program/members", "/admin/committees/program/canned"):
        assert client.get(path).status_code == 404
    response = client.post(
        "/admin/committees/program/canned",
        data={"title": "Hi", "body": "Hello", "csrf_token": token},
    )
    assert response.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CannedReply)) == 0


def test_forms_without_csrf_token_are_refused(client, club, session):
    login(client, club["users"]["admin"])
    response = client.post(
        "/admin/committees/board/members",
        data={"email": club["users"]["non-member"].email, "role": "lead"},
    )
    assert response.status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(Membership)) == 3


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_canned_replies_are_created_edited_and_deleted(client, club, session, persona):
    login(client, club["users"][persona])
    token = csrf_token(client, "/")
    base = "/admin/committees/board/canned"
    bad = client.post(base, data={"title": "Broken", "body": "{{ oops", "csrf_token": token})
    assert bad.status_code == 200
    assert "does not render" in bad.get_data(as_text=True)
    assert (
        client.post(
            base, data={"title": "Thanks", "body": "Thanks {{ contact.name }}", "csrf_token": token}
        ).status_code
        == 302
    )
    reply = session.scalar(sa.select(CannedReply))
    reply_id = reply.id
    edit = client.post(
        f"{base}/{reply.id}", data={"title": "Thank you", "body": "Merci", "csrf_token": token}
    )
    assert edit.status_code == 302
    session.expire_all()
    assert session.get(CannedReply, reply.id).title == "Thank you"
    assert client.post(f"{base}/{reply_id}/delete", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.get(CannedReply, reply_id) is None
    assert [
        e.action
        for e in session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action.startswith("canned_reply."))
            .order_by(AuditEvent.id)
        )
    ] == ["canned_reply.created", "canned_reply.updated", "canned_reply.deleted"]


def test_an_admin_creates_and_edits_a_committee(client, club, session):
    login(client, club["users"]["admin"])
    token = csrf_token(client, "/")
    response = client.post(
        "/admin/committees/new",
        data={
            "slug": "grants",
            "name": "Grants",
            "visibility": "members",
            "addresses": "grants@conference.test\nGrants-Help@Conference.test",
            "acknowledge": "y",
            "ack_subject": "",
            "ack_text": "",
            "discord_webhook": "https://discord.com/api/webhooks/12345678/" + "a" * 40,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    committee = session.scalar(sa.select(Committee).where(Committee.slug == "grants"))
    assert committee.address_list == ["grants@conference.test", "grants-help@conference.test"]
    assert committee.discord_webhook_encrypted
    assert "a" * 40 not in committee.discord_webhook_encrypted
    # The webhook is not shown back; an address of another committee is refused.
    page = client.get("/admin/committees/grants").get_data(as_text=True)
    assert "a" * 40 not in page
    assert "https://discord.com/api/webhooks/12345678/aaaa…" in page
    taken = client.post(
        "/admin/committees/grants",
        data={
            "name": "Grants",
            "visibility": "private",
            "addresses": "program@conference.test",
            "csrf_token": token,
        },
    )
    assert taken.status_code == 200
    assert "belongs to committee" in taken.get_data(as_text=True)
    saved = client.post(
        "/admin/committees/grants",
        data={
            "name": "Travel Grants",
            "visibility": "private",
            "addresses": "travel@conference.test",
            "ack_subject": "We got it",
            "remove_discord_webhook": "y",
            "csrf_token": token,
        },
    )
    assert saved.status_code == 302
    session.expire_all()
    committee = session.get(Committee, committee.id)
    assert committee.name == "Travel Grants"
    assert committee.visibility.value == "private"
    assert committee.address_list == ["travel@conference.test"]
    assert committee.acknowledge is False
    assert committee.ack_subject == "We got it"
    assert committee.discord_webhook_encrypted is None
    event = _events("committee.updated")[-1]
    assert event.data["changes"]["name"] == ["Grants", "Travel Grants"]
    assert event.data["discord_webhook_changed"] is True
    # Routing sees the new address at once.
    from helpdesk.inbound.directory import directory

    assert directory().committee_by_address["travel@conference.test"] == committee.id


def test_a_bad_webhook_url_is_refused_naming_the_field(client, club):
    login(client, club["users"]["admin"])
    token = csrf_token(client, "/")
    response = client.post(
        "/admin/committees/board",
        data={
            "name": "Secret Board",
            "visibility": "private",
            "addresses": "board@conference.test",
            "discord_webhook": "https://attacker.example/api/webhooks/1/2",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "not a Discord webhook URL" in response.get_data(as_text=True)


def test_routing_rules_are_added_reordered_tested_and_deleted(client, club, session):
    login(client, club["users"]["admin"])
    token = csrf_token(client, "/")
    for name, keyword, committee in (
        ("Visa to program", "visa", club["other"]),
        ("Harassment to board", "harassment", club["private"]),
    ):
        response = client.post(
            "/admin/rules",
            data={
                "name": name,
                "enabled": "y",
                "subject_keywords": keyword,
                "committee": str(committee.id),
                "tags": "auto",
                "priority": "high",
                "csrf_token": token,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
    empty = client.post("/admin/rules", data={"name": "Nothing", "csrf_token": token})
    assert "at least one condition" in empty.get_data(as_text=True)
    rules = list(session.scalars(sa.select(RoutingRule).order_by(RoutingRule.position)))
    assert [r.name for r in rules] == ["Visa to program", "Harassment to board"]
    first_id = rules[0].id
    mail = "From: sam@example.net\nTo: info@conference.test\nSubject: visa and harassment\n"
    outcome = client.post("/admin/rules/test", data={"mail": mail, "csrf_token": token})
    text = outcome.get_data(as_text=True)
    assert '<dd class="col-sm-9" id="routed-to">Program</dd>' in text
    assert "rule &#39;Visa to program&#39;" in text
    # Move the second rule up: it decides now, and the ingester's cache knows at once.
    assert (
        client.post(
            f"/admin/rules/{rules[1].id}/move", data={"direction": "up", "csrf_token": token}
        ).status_code
        == 302
    )
    outcome = client.post("/admin/rules/test", data={"mail": mail, "csrf_token": token})
    assert 'id="routed-to">Secret Board</dd>' in outcome.get_data(as_text=True)
    edit = client.post(
        f"/admin/rules/{rules[1].id}",
        data={
            "name": "Harassment",
            "subject_keywords": "harassment",
            "committee": "",
            "csrf_token": token,
        },
    )
    assert edit.status_code == 302
    session.expire_all()
    assert session.get(RoutingRule, rules[1].id).enabled is False
    assert (
        client.post(f"/admin/rules/{rules[0].id}/delete", data={"csrf_token": token}).status_code
        == 302
    )
    session.expire_all()
    assert session.get(RoutingRule, first_id) is None
    actions = [
        e.action
        for e in session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action.startswith("routing_rule."))
            .order_by(AuditEvent.id)
        )
    ]
    assert actions == [
        "routing_rule.created",
        "routing_rule.created",
        "routing_rule.moved",
        "routing_rule.updated",
        "routing_rule.deleted",
    ]


def test_quarantine_shows_headers_downloads_retries_and_deletes(client, club, session):
    from helpdesk.inbound.ingest import Source, quarantine
    from tests.support.mails import make_mail

    raw = make_mail(to="program@conference.test", subject="Stuck mail")
    from helpdesk.storage import raw_mail_store

    sha = raw_mail_store().put(raw)
    first = quarantine(raw, sha, Source("imap/test"), "parse", ValueError("broken header"))
    second = quarantine(
        raw + b"\n",
        raw_mail_store().put(raw + b"\n"),
        Source("imap/test"),
        "parse",
        ValueError("again"),
    )
    login(client, club["users"]["admin"])
    token = csrf_token(client, "/")
    listing = client.get("/admin/quarantine").get_data(as_text=True)
    assert "broken header" in listing
    page = client.get(f"/admin/quarantine/{first.quarantine_id}").get_data(as_text=True)
    assert "Subject: Stuck mail" in page
    download = client.get(f"/admin/quarantine/{first.quarantine_id}/raw")
    assert download.data == raw
    assert download.headers["Content-Disposition"].startswith("attachment")
    retried = client.post(
        f"/admin/quarantine/{first.quarantine_id}/retry", data={"csrf_token": token}
    )
    assert retried.status_code == 302
    session.expire_all()
    entry = session.get(QuarantinedMail, first.quarantine_id)
    assert entry.resolved_at is not None
    assert (
        client.post(
            f"/admin/quarantine/{second.quarantine_id}/delete", data={"csrf_token": token}
        ).status_code
        == 302
    )
    assert session.get(QuarantinedMail, second.quarantine_id) is None
    assert _events("quarantine.retried")[-1].data["outcome"] == "tickets"
    assert _events("quarantine.deleted")[-1].data["entry_id"] == second.quarantine_id
    # Leads are not told the quarantine exists.
    other = client.application.test_client()
    login(other, club["users"]["lead"])
    assert other.get(f"/admin/quarantine/{entry.id}/raw").status_code == 404


def test_mailbox_health_and_a_failing_test_login(client, club, session):
    from helpdesk.inbound.mailboxes import add_mailbox, record_health

    box = add_mailbox(
        "info", host="127.0.0.1", port=1, tls="none", username="info", password="secret-password"
    )
    session.commit()
    record_health("info", ok=False, error="connection refused")
    login(client, club["users"]["admin"])
    token = csrf_token(client, "/")
    page = client.get("/admin/mailboxes").get_data(as_text=True)
    assert "connection refused" in page
    assert "secret-password" not in page
    tested = client.post(f"/admin/mailboxes/{box.id}/test", data={"csrf_token": token})
    assert tested.status_code == 200
    assert "login failed" in tested.get_data(as_text=True)
    assert (
        client.post(
            f"/admin/mailboxes/{box.id}/enabled", data={"enabled": "0", "csrf_token": token}
        ).status_code
        == 302
    )
    session.expire_all()
    assert session.get(type(box), box.id).enabled is False
    assert [e.action for e in _events("mailbox.tested")] == ["mailbox.tested"]
    assert _events("mailbox.disabled")


def test_users_are_deactivated_made_admin_and_lose_their_sessions(app, client, club, session):
    admin = club["users"]["admin"]
    member = club["users"]["member"]
    member_client = app.test_client()
    login(member_client, member)
    assert member_client.get("/").status_code == 200
    login(client, admin)
    token = csrf_token(client, "/")
    assert (
        client.post(f"/admin/users/{member.id}/make_admin", data={"csrf_token": token}).status_code
        == 302
    )
    assert member_client.get("/admin/users").status_code == 200
    assert (
        client.post(
            f"/admin/users/{member.id}/remove_admin", data={"csrf_token": token}
        ).status_code
        == 302
    )
    assert member_client.get("/admin/users").status_code == 404
    assert (
        client.post(f"/admin/users/{member.id}/deactivate", data={"csrf_token": token}).status_code
        == 302
    )
    response = member_client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert [
        e.action
        for e in session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_user_id == member.id, AuditEvent.action.like("agent.%"))
            .order_by(AuditEvent.id)
        )
    ][-3:] == ["agent.admin_granted", "agent.admin_revoked", "agent.deactivated"]
    # An admin cannot lock themselves out.
    client.post(f"/admin/users/{admin.id}/deactivate", data={"csrf_token": token})
    session.expire_all()
    assert session.get(User, admin.id).active


def test_the_audit_log_filters_and_pages(client, club, session, make_ticket):
    from helpdesk import tickets
    from helpdesk.web.admin.audit_log import PAGE_SIZE

    ticket = make_ticket(committee=club["other"])
    for i in range(PAGE_SIZE + 5):
        tickets.set_tags(ticket.id, [f"tag{i}"], actor_id=club["users"]["lead of another"].id)
    session.commit()
    login(client, club["users"]["admin"])
    first = client.get(f"/admin/audit?ticket={ticket.number}&action=ticket.tagged")
    text = first.get_data(as_text=True)
    assert text.count("<code>ticket.tagged</code>") == PAGE_SIZE
    assert "Older events" in text
    older = text.split('href="/admin/audit?before=', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    rest = client.get(f"/admin/audit?before={older}").get_data(as_text=True)
    assert rest.count("<code>ticket.tagged</code>") == 5
    by_user = client.get(f"/admin/audit?user={club['users']['member'].email}").get_data(
        as_text=True
    )
    assert "ticket.tagged" not in by_user
    assert "membership.added" in by_user
    # A lead sees only what access allows: not the private committee's management events.
    lead = client.application.test_client()
    login(lead, club["users"]["lead of another"])
    text = lead.get("/admin/audit").get_data(as_text=True)
    assert "ticket.tagged" in text
    assert "Secret Board" not in text
    assert "board@conference.test" not in text
    assert '"slug": "board"' not in text


def test_anonymous_visitors_are_sent_to_the_login(client, club):
    for path in ("/admin/", "/admin/users", "/admin/committees/board/members", "/account"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login")
