"""Replies: Markdown to HTML and text, threaded, from the committee, queued after commit."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpdesk import collisions, replies, tickets
from helpdesk.errors import ServiceError
from helpdesk.inbound.threading import ticket_number_from_message_id
from helpdesk.models import Direction, Message, OutboundMessage, TicketStatus


def _outbox(app) -> set[Path]:
    return set(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml"))


def _reply(ticket, user, body="Thanks, **done**.", **kwargs):
    kwargs.setdefault("cc", [])
    kwargs.setdefault("snapshot", collisions.snapshot_of(ticket.id))
    return replies.send_reply(ticket.id, user.id, body, **kwargs)


def test_a_reply_is_mailed_after_commit_threaded_tagged_and_from_the_committee(
    session, app, make_committee, make_user, make_ticket
):
    committee = make_committee(slug="program", name="Program committee")
    agent = make_user(committees=[committee])
    ticket = make_ticket(committee=committee, subject="Talk slot", contact_email="sam@example.net")
    before = _outbox(app)

    message = _reply(ticket, agent, cc=["friend@example.org"])
    assert _outbox(app) == before  # nothing leaves before the commit
    session.commit()

    new = _outbox(app) - before
    assert len(new) == 1
    mail = email.message_from_bytes(new.pop().read_bytes(), policy=policy.default)
    assert mail["From"] == "Program committee <program@conference.test>"
    assert "sam@example.net" in mail["To"]
    assert mail["Cc"] == "friend@example.org"
    assert mail["Subject"] == f"[Helpdesk #{ticket.number}] Re: Talk slot"
    inbound_id = ticket.messages[0].message_id
    assert mail["In-Reply-To"] == f"<{inbound_id}>"
    assert f"<{inbound_id}>" in mail["References"]
    assert ticket_number_from_message_id(mail["Message-ID"].strip("<>")) == ticket.number
    assert mail.get_body(("plain",)).get_content().strip() == "Thanks, **done**."
    assert "<strong>done</strong>" in mail.get_body(("html",)).get_content()

    assert message.direction is Direction.OUTBOUND
    assert message.author_id == agent.id
    assert message.message_id == mail["Message-ID"].strip("<>")
    session.refresh(ticket)
    assert ticket.status is TicketStatus.PENDING
    assert ticket.assignee_id == agent.id  # an unassigned ticket goes to whoever answers it
    assert {p.address for p in ticket.participants} == {"friend@example.org"}


def test_markdown_cannot_smuggle_html_into_the_mail(session, make_user, make_ticket):
    html = replies.render_markdown("<script>alert(1)</script> <img src=x onerror=alert(1)> *hi*")
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "<em>hi</em>" in html
    assert 'href="javascript' not in replies.render_markdown("[x](javascript:alert(1))")


def test_replying_to_a_ticket_without_a_verified_contact_is_refused(
    session, make_user, make_committee
):
    committee = make_committee()
    agent = make_user(committees=[committee])
    ticket = tickets.create_ticket(committee.id, "From an unverified sender")
    with pytest.raises(ServiceError, match="no verified contact"):
        _reply(ticket, agent)
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_cc_addresses_are_checked(session):
    assert replies.parse_cc("A <a@example.org>; b@example.org\nA@EXAMPLE.org") == [
        "a@example.org",
        "b@example.org",
    ]
    with pytest.raises(ServiceError):
        replies.parse_cc("not an address")
    with pytest.raises(ServiceError):
        replies.parse_cc(", ".join(f"p{i}@example.org" for i in range(21)))


def test_a_reply_uses_the_committee_address_the_contact_wrote_to(
    session, app, make_committee, make_user, make_ticket
):
    committee = make_committee(
        slug="grants", mail_addresses=["grants@conference.test", "aid@conference.test"]
    )
    agent = make_user(committees=[committee])
    ticket = make_ticket(committee=committee)
    ticket.messages[0].to_addresses = ["aid@conference.test"]
    session.flush()
    message = _reply(ticket, agent)
    assert message.from_address == "aid@conference.test"


def test_an_empty_reply_is_refused(session, make_user, make_ticket):
    ticket = make_ticket()
    with pytest.raises(ServiceError):
        _reply(ticket, make_user(), body="   ")


def test_a_note_is_never_mailed(session, app, make_user, make_ticket):
    from helpdesk import mentions

    ticket = make_ticket()
    before = _outbox(app)
    mentions.add_note(ticket.id, make_user().id, "Internal: the contact is a sponsor.")
    session.commit()
    assert _outbox(app) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0
    note = session.scalars(sa.select(Message).where(Message.direction == Direction.NOTE)).one()
    assert note.ticket_id == ticket.id
