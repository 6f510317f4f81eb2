"""The inbound pipeline end to end on the database: tickets, threading, routing, dedupe,
acknowledgements, bounces, auto-replies, quarantine."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpdesk import tickets
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.inbound.ingest import Source, ingest, retry_quarantined
from helpdesk.models import (
    Attachment,
    BounceRecord,
    Direction,
    InboundReceipt,
    Message,
    OutboundKind,
    OutboundMessage,
    QuarantinedMail,
    RawMail,
    RoutingRule,
    Suppression,
    Ticket,
    TicketLink,
)
from helpdesk.storage import raw_mail_store
from tests.support.mails import make_mail

SOURCE = Source("test")


@pytest.fixture
def conference(session, make_committee):
    """info (triage), program (open), grants (members only), diversity (private)."""
    return {
        "info": make_committee("info", triage=True, mail_addresses=["info@conference.test"]),
        "program": make_committee("program", mail_addresses=["program@conference.test"]),
        "grants": make_committee(
            "grants", visibility="members", mail_addresses=["grants@conference.test"]
        ),
        "diversity": make_committee(
            "diversity", visibility="private", mail_addresses=["diversity@conference.test"]
        ),
    }


def _ticket(number: int) -> Ticket:
    return db.session.scalar(sa.select(Ticket).where(Ticket.number == number))


def _acks() -> list[OutboundMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.kind == OutboundKind.ACKNOWLEDGEMENT)
            .order_by(OutboundMessage.id)
        )
    )


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_new_mail_opens_a_ticket_and_is_acknowledged(conference, app):
    raw = make_mail(subject="Slot swap", body="Could I swap to Thursday?\n")
    result = ingest(raw, SOURCE)
    assert result.outcome == "tickets"
    ticket = _ticket(result.new_ticket_numbers[0])
    assert ticket.committee.slug == "program"
    assert ticket.subject == "Slot swap"
    assert ticket.contact.email == "sam@example.net"
    inbound = ticket.messages[0]
    assert inbound.direction == Direction.INBOUND
    assert inbound.text.strip() == "Could I swap to Thursday?"
    assert inbound.classification == "personal"
    assert raw_mail_store().get(inbound.raw_mail.sha256) == raw

    (ack,) = _acks()
    assert ack.status == "sent"
    assert ack.ticket_id == ticket.id
    sent = email.message_from_bytes(
        (Path(app.config["HELPDESK_OUTBOX_PATH"]) / ack.provider_id).read_bytes(),
        policy=policy.default,
    )
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["Subject"] == f"[Helpdesk #{ticket.number}] Re: Slot swap"
    assert sent["In-Reply-To"] == f"<{inbound.message_id}>"
    assert sent["To"] == "Sam Speaker <sam@example.net>"
    assert sent["From"] == "Program <program@conference.test>"
    assert f"ticket #{ticket.number}" in sent.get_content()
    # The acknowledgement is part of the thread.
    assert [m.direction for m in ticket.messages] == [Direction.INBOUND, Direction.OUTBOUND]


def test_a_sender_with_a_very_long_name_gets_a_ticket_and_a_contact(conference):
    name = "Dr. " + "Maximiliane-Jösephine " * 20
    result = ingest(
        make_mail(sender=f'"{name}" <max@example.net>', to="program@conference.test"), SOURCE
    )
    assert result.outcome == "tickets"
    ticket = _ticket(result.new_ticket_numbers[0])
    assert ticket.contact.email == "max@example.net"
    assert name.startswith(ticket.contact.name)
    assert len(_acks()) == 1


def test_the_same_mail_twice_changes_nothing(conference):
    raw = make_mail()
    first = ingest(raw, SOURCE)
    counts = (_count(Ticket), _count(Message), _count(OutboundMessage), _count(InboundReceipt))
    second = ingest(raw, SOURCE)
    assert second.outcome == "duplicate"
    assert second.ticket_numbers == []
    assert (_count(Ticket), _count(Message), _count(OutboundMessage), _count(InboundReceipt)) == (
        counts
    )
    assert first.new_ticket_numbers


def test_the_same_mail_from_another_mailbox_copy_is_recognised(conference):
    raw = make_mail(message_id="<copy@example.net>")
    other_copy = b"Delivered-To: program@conference.test\r\n" + raw
    ingest(raw, SOURCE)
    assert ingest(other_copy, SOURCE).outcome == "duplicate"
    assert _count(Ticket) == 1


def test_a_mail_to_two_committees_opens_one_ticket_in_each(conference):
    raw = make_mail(to="program@conference.test", cc="grants@conference.test")
    result = ingest(raw, SOURCE)
    slugs = sorted(_ticket(n).committee.slug for n in result.new_ticket_numbers)
    assert slugs == ["grants", "program"]
    assert len({_ticket(n).id for n in result.new_ticket_numbers}) == 2
    assert len(_acks()) == 1  # one acknowledgement per sender, not per committee
    assert ingest(raw, SOURCE).outcome == "duplicate"


def test_unaddressed_mail_goes_to_triage_and_plus_addresses_route(conference):
    stray = ingest(make_mail(to="someone-else@conference.test"), SOURCE)
    assert _ticket(stray.new_ticket_numbers[0]).committee.slug == "info"
    plus = ingest(make_mail(to="Program+Visa@Conference.test"), SOURCE)
    assert _ticket(plus.new_ticket_numbers[0]).committee.slug == "program"


def test_a_reply_to_our_acknowledgement_threads_and_reopens(conference):
    first = ingest(make_mail(subject="Visa letter"), SOURCE)
    ticket = _ticket(first.new_ticket_numbers[0])
    tickets.set_status(ticket.id, "solved")
    db.session.commit()
    (ack,) = _acks()
    reply = make_mail(
        subject=f"Re: [Helpdesk #{ticket.number}] Visa letter",
        in_reply_to=f"<{ack.message_id}>",
        references=f"<{ack.message_id}>",
        body="Thanks, one more question.\n",
    )
    result = ingest(reply, SOURCE)
    assert result.ticket_numbers == [ticket.number]
    assert result.new_ticket_numbers == []
    db.session.refresh(ticket)
    assert ticket.status == "open"
    assert len(_acks()) == 1  # follow-ups are not acknowledged


def test_a_reply_matching_a_stored_message_id_threads(conference):
    original = make_mail(message_id="<original@example.net>", subject="Grant question")
    number = ingest(original, SOURCE).new_ticket_numbers[0]
    colleague = make_mail(
        sender="colleague@example.org",
        references="<unrelated@x.example> <original@example.net>",
        subject="Re: Grant question",
    )
    assert ingest(colleague, SOURCE).ticket_numbers == [number]


def test_a_subject_tag_attaches_mail_from_the_contact_only(conference):
    number = ingest(make_mail(subject="Booth"), SOURCE).new_ticket_numbers[0]
    from_contact = make_mail(subject=f"[Helpdesk #{number}] more about the booth")
    assert ingest(from_contact, SOURCE).ticket_numbers == [number]

    stranger = make_mail(
        sender="stranger@elsewhere.example", subject=f"[Helpdesk #{number}] let me in"
    )
    result = ingest(stranger, SOURCE)
    assert result.new_ticket_numbers
    assert result.new_ticket_numbers[0] != number
    link = db.session.scalar(sa.select(TicketLink))
    assert (link.linked_number, link.kind) == (number, "referenced")


def test_a_stranger_cannot_reach_a_private_ticket_by_its_number(conference):
    report = make_mail(sender="reporter@example.com", to="diversity@conference.test")
    private_number = ingest(report, SOURCE).new_ticket_numbers[0]
    private = _ticket(private_number)
    before = len(private.messages)

    probe = make_mail(
        sender="curious@example.org",
        to="info@conference.test",
        subject=f"[Helpdesk #{private_number}] what happened?",
    )
    result = ingest(probe, SOURCE)
    assert result.new_ticket_numbers
    new = _ticket(result.new_ticket_numbers[0])
    assert new.committee.slug == "info"
    db.session.refresh(private)
    assert len(private.messages) == before
    assert new.contact.email == "curious@example.org"


def test_a_reply_to_a_long_closed_ticket_opens_a_linked_one(conference, app):
    number = ingest(make_mail(subject="Old"), SOURCE).new_ticket_numbers[0]
    ticket = _ticket(number)
    tickets.set_status(ticket.id, "closed")
    ticket.closed_at = utcnow() - timedelta(days=app.config["HELPDESK_REOPEN_DAYS"] + 1)
    db.session.commit()
    (ack,) = _acks()
    result = ingest(make_mail(in_reply_to=f"<{ack.message_id}>"), SOURCE)
    assert result.new_ticket_numbers
    assert result.new_ticket_numbers[0] != number
    link = db.session.scalar(sa.select(TicketLink))
    assert (link.linked_number, link.kind) == (number, "follow_up_of")
    db.session.refresh(ticket)
    assert ticket.status == "closed"


def test_auto_replies_attach_without_reopening_and_never_open_tickets(conference):
    number = ingest(make_mail(), SOURCE).new_ticket_numbers[0]
    ticket = _ticket(number)
    tickets.set_status(ticket.id, "pending")
    db.session.commit()
    (ack,) = _acks()
    out_of_office = make_mail(
        subject="Automatic reply: Re: your question",
        in_reply_to=f"<{ack.message_id}>",
        headers={"Auto-Submitted": "auto-replied"},
        body="I am away until Monday.\n",
    )
    result = ingest(out_of_office, SOURCE)
    assert result.outcome == "auto_reply"
    assert result.ticket_numbers == [number]
    db.session.refresh(ticket)
    assert ticket.status == "pending"
    assert ticket.messages[-1].classification == "auto_reply"

    tickets_before = _count(Ticket)
    unmatched = make_mail(
        sender="away@example.org",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    assert ingest(unmatched, SOURCE).outcome == "auto_reply"
    assert _count(Ticket) == tickets_before
    assert len(_acks()) == 1


def _dsn(original_message_id: str, recipient: str, status: str = "5.1.1") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: program@conference.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-" + original_message_id.split("@")[0] + "@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_message_id}>\r\nSubject: Re: Question\r\n"
        "--B--\r\n"
    ).encode()


def test_bounces_become_records_linked_to_our_mail_and_suppress_hard_failures(conference):
    ingest(make_mail(), SOURCE)
    (ack,) = _acks()
    tickets_before = _count(Ticket)
    result = ingest(_dsn(ack.message_id, "sam@example.net"), SOURCE)
    assert result.outcome == "bounce"
    assert _count(Ticket) == tickets_before
    record = db.session.scalar(sa.select(BounceRecord))
    assert record.outbound_message_id == ack.id
    assert record.recipients[0]["address"] == "sam@example.net"
    assert record.recipients[0]["permanent"] is True
    assert db.session.scalar(sa.select(Suppression.reason)) == "hard_bounce"
    assert len(_acks()) == 1  # no acknowledgement to a bounce
    assert ingest(_dsn(ack.message_id, "sam@example.net"), SOURCE).outcome == "duplicate"


def test_a_soft_bounce_does_not_suppress(conference):
    ingest(make_mail(), SOURCE)
    (ack,) = _acks()
    ingest(_dsn(ack.message_id, "sam@example.net", status="4.2.2"), SOURCE)
    assert _count(Suppression) == 0


def test_our_own_mail_coming_back_is_dropped(conference, app):
    ingest(make_mail(), SOURCE)
    (ack,) = _acks()
    echoed = (Path(app.config["HELPDESK_OUTBOX_PATH"]) / ack.provider_id).read_bytes()
    tickets_before = _count(Ticket)
    assert ingest(echoed, SOURCE).outcome == "own_mail"
    assert _count(Ticket) == tickets_before


def test_input_that_is_not_mail_is_quarantined_with_its_bytes(conference):
    result = ingest(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, Source("upload.msg"))
    assert result.outcome == "quarantined"
    entry = db.session.get(QuarantinedMail, result.quarantine_id)
    assert entry.stage == "parse"
    assert "Outlook" in entry.error
    assert raw_mail_store().get(entry.raw_mail.sha256).startswith(b"\xd0\xcf\x11\xe0")


def test_a_quarantined_mail_can_be_retried_once_the_cause_is_fixed(session, make_committee):
    program = make_committee("program", mail_addresses=["program@conference.test"])
    stray = make_mail(to="nobody@conference.test")  # no triage committee yet
    result = ingest(stray, SOURCE)
    assert result.outcome == "quarantined"
    entry = db.session.get(QuarantinedMail, result.quarantine_id)
    assert entry.stage == "route"
    assert "triage" in entry.error
    assert ingest(stray, SOURCE).quarantine_id == entry.id  # the same entry, counted
    assert db.session.get(QuarantinedMail, entry.id).attempts == 2

    make_committee("info", triage=True, mail_addresses=["info@conference.test"])
    retried = retry_quarantined(entry.id)
    assert retried.outcome == "tickets"
    entry = db.session.get(QuarantinedMail, entry.id)
    assert entry.resolved_at is not None
    assert program.id  # untouched


def test_a_deleted_tickets_mail_is_never_imported_again(conference):
    raw = make_mail()
    number = ingest(raw, SOURCE).new_ticket_numbers[0]
    db.session.delete(_ticket(number))
    db.session.commit()
    assert ingest(raw, SOURCE).outcome == "duplicate"
    assert _ticket(number) is None


def test_attachments_are_stored_by_content_and_inline_images_keep_their_cid(conference, app):
    pdf = b"%PDF-1.4 slides"
    raw = make_mail(
        html='<p>See <img src="cid:logo@x"></p>',
        attachments=[("slides.pdf", "application/pdf", pdf), ("copy.pdf", "application/pdf", pdf)],
    )
    number = ingest(raw, SOURCE).new_ticket_numbers[0]
    message = _ticket(number).messages[0]
    names = sorted(a.filename for a in message.attachments)
    assert names == ["copy.pdf", "slides.pdf"]
    assert len({a.sha256 for a in message.attachments}) == 1
    assert "cid:logo@x" in message.html
    assert "<script" not in message.html


def test_html_is_sanitised_before_it_is_stored(conference):
    raw = make_mail(html='<p onclick="alert(1)">Hi<script>alert(2)</script></p>')
    message = _ticket(ingest(raw, SOURCE).new_ticket_numbers[0]).messages[0]
    assert "onclick" not in message.html
    assert "<script" not in message.html
    assert "Hi" in message.html


def test_oversized_mail_keeps_its_raw_bytes_and_opens_a_ticket_with_a_note(conference, app):
    app.config["HELPDESK_MAX_MAIL_BYTES"] = 2000
    try:
        raw = make_mail(attachments=[("big.bin", "application/octet-stream", b"x" * 5000)])
        number = ingest(raw, SOURCE).new_ticket_numbers[0]
    finally:
        app.config["HELPDESK_MAX_MAIL_BYTES"] = 30 * 1024 * 1024
    ticket = _ticket(number)
    assert _count(Attachment) == 0
    note = next(m for m in ticket.messages if m.direction == Direction.NOTE)
    assert "over the size limit" in note.text
    assert raw_mail_store().get(ticket.messages[0].raw_mail.sha256) == raw


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("no-reply@service.example", {}),
        ("MAILER-DAEMON@mx.example", {}),
        ("news@shop.example", {"Precedence": "bulk"}),
        ("Program <program@conference.test>", {}),
    ],
)
def test_machines_and_our_own_addresses_get_no_acknowledgement(conference, sender, headers):
    ingest(make_mail(sender=sender, to="info@conference.test", headers=headers), SOURCE)
    assert _acks() == []


def test_at_most_one_acknowledgement_per_sender_in_the_interval(conference):
    first = ingest(make_mail(subject="One"), SOURCE)
    second = ingest(make_mail(subject="Two"), SOURCE)
    assert first.new_ticket_numbers
    assert second.new_ticket_numbers
    assert len(_acks()) == 1


def test_cc_strangers_join_open_tickets_but_never_private_ones(conference):
    open_number = ingest(
        make_mail(to="program@conference.test", cc="friend@example.org"), SOURCE
    ).new_ticket_numbers[0]
    assert [p.address for p in _ticket(open_number).participants] == ["friend@example.org"]
    private_number = ingest(
        make_mail(to="diversity@conference.test", cc="friend@example.org"), SOURCE
    ).new_ticket_numbers[0]
    assert _ticket(private_number).participants == []


def test_routing_rules_decide_before_addresses(conference):
    db.session.add(
        RoutingRule(
            position=1,
            name="visa letters",
            conditions={"subject_keywords": ["visa"]},
            committee_id=conference["grants"].id,
            tags=["visa"],
            priority="high",
        )
    )
    db.session.commit()
    number = ingest(make_mail(subject="Visa invitation letter"), SOURCE).new_ticket_numbers[0]
    ticket = _ticket(number)
    assert ticket.committee.slug == "grants"
    assert ticket.tags == ["visa"]
    assert ticket.priority == "high"


def test_every_stored_mail_has_its_raw_row(conference):
    ingest(make_mail(), SOURCE)
    ingest(b"", SOURCE)
    for row in db.session.scalars(sa.select(RawMail)):
        assert raw_mail_store().exists(row.sha256)


# -- Google Groups -------------------------------------------------------------------------


@pytest.fixture
def group_keys(app, dkim_key):
    """googlegroups.com's signing key, as a TXT override, for the app's verifier."""
    from helpdesk.inbound.dkim import DkimVerifier, TableLookup

    previous = app.extensions.get("helpdesk_dkim")
    app.extensions["helpdesk_dkim"] = DkimVerifier(
        TableLookup({"s1._domainkey.googlegroups.com": dkim_key.txt})
    )
    yield dkim_key
    app.extensions["helpdesk_dkim"] = previous


def _group_mail(claimed: str = "Jane Doe <jane@example.org>") -> bytes:
    from tests.inbound.test_groups import rewritten

    name, address = claimed.split(" <")[0], claimed.split("<")[1].rstrip(">")
    raw = rewritten(
        original_from=claimed, original_sender=address, list_id="Program <program.pycon.test>"
    )
    return raw.replace(b"'Jane Doe' via", f"'{name}' via".encode()).replace(
        b"Reply-To: Jane Doe <jane@example.org>", f"Reply-To: {claimed}".encode()
    )


@pytest.fixture
def group_conference(session, make_committee):
    make_committee("info", triage=True, mail_addresses=["info@pycon.test"])
    return make_committee("program", mail_addresses=["program@pycon.test"])


def test_a_signed_group_mail_is_from_its_real_sender(group_conference, group_keys):
    from tests.inbound.conftest import sign
    from tests.inbound.test_groups import GOOGLE_HEADERS

    raw = sign(_group_mail(), group_keys, "googlegroups.com", GOOGLE_HEADERS)
    result = ingest(raw, SOURCE)
    ticket = _ticket(result.new_ticket_numbers[0])
    assert ticket.committee.slug == "program"
    assert ticket.contact.email == "jane@example.org"
    message = ticket.messages[0]
    assert message.sender_verified is True
    assert message.from_address == "jane@example.org"
    assert "You received this message because" not in message.text
    assert "Hello, here is my proposal." in message.text
    (ack,) = _acks()  # Precedence: list from our own Group is not bulk
    assert ack.to == ["Jane Doe <jane@example.org>"]


def test_a_forged_group_sender_is_shown_unverified_and_never_trusted(group_conference, group_keys):
    raw = _group_mail("Chair Person <chair@pycon.test>")  # no signature at all
    result = ingest(raw, SOURCE)
    ticket = _ticket(result.new_ticket_numbers[0])
    assert ticket.contact is None
    message = ticket.messages[0]
    assert message.sender_verified is False
    assert message.claimed_sender == "Chair Person <chair@pycon.test>"
    assert _acks() == []  # nobody is acknowledged on a claim


def test_a_forged_sender_cannot_thread_onto_the_claimed_persons_ticket(
    group_conference, group_keys
):
    number = ingest(
        make_mail(sender="chair@pycon.test", to="program@pycon.test", subject="Budget"), SOURCE
    ).new_ticket_numbers[0]
    raw = _group_mail("Chair Person <chair@pycon.test>").replace(
        b"Subject: Talk proposal", f"Subject: [Helpdesk #{number}] Budget".encode()
    )
    result = ingest(raw, SOURCE)
    assert number not in result.ticket_numbers


def test_routing_on_sender_kind_looks_the_contact_up(conference):
    from helpdesk.contacts import get_or_create_contact
    from helpdesk.inbound.directory import invalidate

    get_or_create_contact("sam@example.net", "Sam", kinds=("speaker",))
    db.session.add(
        RoutingRule(
            position=1,
            name="speakers",
            conditions={"sender_kind": ["speaker"]},
            committee_id=conference["program"].id,
        )
    )
    db.session.commit()
    invalidate()
    speaker = ingest(make_mail(to="info@conference.test"), SOURCE)
    assert _ticket(speaker.new_ticket_numbers[0]).committee.slug == "program"
    someone = ingest(make_mail(sender="x@example.org", to="info@conference.test"), SOURCE)
    assert _ticket(someone.new_ticket_numbers[0]).committee.slug == "info"
