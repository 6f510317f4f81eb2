"""Ingesting a fetched batch in one transaction: the same rows as one mail at a time, and
a fall back to one at a time when anything in the batch fails."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.inbound import records
from helpdesk.inbound.batch import ingest_batch
from helpdesk.inbound.ingest import IngestResult, Source, ingest
from helpdesk.models import (
    BounceRecord,
    InboundReceipt,
    OutboundKind,
    OutboundMessage,
    QuarantinedMail,
    Suppression,
    Ticket,
)
from tests.inbound.test_ingest import _dsn
from tests.support.mails import make_mail, message_id_of

pytestmark = pytest.mark.usefixtures("conference")


@pytest.fixture
def conference(session, make_committee):
    committees = {
        "info": make_committee("info", triage=True, mail_addresses=["info@conference.test"]),
        "program": make_committee("program", mail_addresses=["program@conference.test"]),
    }
    # Committed, as in production: a failed batch rolls back only its own work.
    db.session.commit()
    return committees


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _acks_to(address: str) -> int:
    return _count(
        OutboundMessage,
        OutboundMessage.kind == OutboundKind.ACKNOWLEDGEMENT,
        OutboundMessage.to_key == address,
    )


def _batch(*raws: bytes) -> list[IngestResult | Exception]:
    return ingest_batch([(raw, Source(f"batch #{i}")) for i, raw in enumerate(raws)])


def _outcomes(results) -> list[str]:
    return [r.outcome if isinstance(r, IngestResult) else type(r).__name__ for r in results]


def test_a_batch_writes_what_single_mails_would():
    first = make_mail(sender="Sam <sam@example.net>", subject="Visa letter")
    ingest(first, Source("single"))
    ack = db.session.scalar(
        sa.select(OutboundMessage).where(OutboundMessage.to_key == "sam@example.net")
    )
    # Our acknowledgement to Sam was also sent to Lee, whose mailbox is gone.
    bounce = _dsn(ack.message_id, "lee@example.com")
    new = make_mail(sender="Sam <sam@example.net>", subject="Another question")
    new_id = message_id_of(new)
    reply = make_mail(
        sender="Sam <sam@example.net>", subject="Re: Another question", in_reply_to=f"<{new_id}>"
    )
    from_lee = make_mail(sender="Lee <lee@example.com>", subject="Childcare")
    from_kim = make_mail(sender="Kim <kim@example.org>", subject="Wheelchair access")

    results = _batch(bounce, new, bounce, b"", first, reply, from_lee, from_kim)

    assert _outcomes(results) == [
        "bounce",
        "tickets",
        "duplicate",
        "quarantined",
        "duplicate",
        "tickets",
        "tickets",
        "tickets",
    ]
    (record,) = db.session.scalars(sa.select(BounceRecord))
    assert record.outbound_message_id == ack.id
    assert record.recipients[0]["address"] == "lee@example.com"
    suppression = db.session.scalar(
        sa.select(Suppression).where(Suppression.address_key == "lee@example.com")
    )
    assert suppression.source == f"bounce record {record.id}"
    # The reply in the same batch threads onto the ticket the batch opened.
    assert results[5].ticket_numbers == results[1].new_ticket_numbers
    assert results[5].new_ticket_numbers == []
    # The bounce earlier in the batch suppressed Lee before Lee's ticket was written: no
    # acknowledgement to a dead address. Kim gets hers.
    assert _acks_to("lee@example.com") == 0
    assert _acks_to("kim@example.org") == 1
    assert _count(Ticket) == 4
    quarantined = db.session.get(QuarantinedMail, results[3].quarantine_id)
    assert quarantined.source == "batch #3"
    assert quarantined.stage == "parse"
    # One receipt per mail and scope, whatever the batch repeated.
    assert _count(InboundReceipt, InboundReceipt.scope == "bounce") == 1


def test_a_batch_seen_again_changes_nothing():
    raws = [
        make_mail(sender="Kim <kim@example.org>", subject="Childcare"),
        _dsn("nothing-we-sent@conference.test", "gone@example.com"),
    ]
    assert _outcomes(_batch(*raws)) == ["tickets", "bounce"]
    counts = [_count(m) for m in (Ticket, BounceRecord, InboundReceipt, Suppression)]
    assert _outcomes(_batch(*raws)) == ["duplicate", "duplicate"]
    assert [_count(m) for m in (Ticket, BounceRecord, InboundReceipt, Suppression)] == counts


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("cannot write this one"),
        # A value the database refuses is the mail's problem, not an outage: retrying
        # it forever would stop the mailbox.
        sa.exc.DataError("INSERT", {}, ValueError("cannot write this one: value too long")),
    ],
    ids=["bug", "value refused by the database"],
)
def test_a_mail_failing_in_a_batch_is_quarantined_and_the_others_are_kept(monkeypatch, error):
    opened = records.open_ticket

    def open_ticket(committee_id, facts, raw_mail_id):
        if facts.mail.subject == "boom":
            raise error
        return opened(committee_id, facts, raw_mail_id)

    monkeypatch.setattr(records, "open_ticket", open_ticket)
    bounce = _dsn("nothing-we-sent@conference.test", "gone@example.com")
    results = _batch(bounce, make_mail(subject="boom"), make_mail(subject="fine"))

    assert _outcomes(results) == ["bounce", "quarantined", "tickets"]
    entry = db.session.get(QuarantinedMail, results[1].quarantine_id)
    assert entry.stage == "store"
    assert "cannot write this one" in entry.error
    assert _count(BounceRecord) == 1
    assert _count(Ticket) == 1
    assert _count(Suppression, Suppression.address_key == "gone@example.com") == 1


def test_a_database_outage_fails_every_mail_and_quarantines_none(monkeypatch):
    from helpdesk.inbound import batch
    from helpdesk.inbound import ingest as ingest_module

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(batch, "raw_rows", down)
    monkeypatch.setattr(ingest_module, "raw_row", down)
    results = _batch(make_mail(), _dsn("x@conference.test", "gone@example.com"))

    assert all(isinstance(r, sa.exc.OperationalError) for r in results)
    assert _count(QuarantinedMail) == 0
    assert _count(Ticket) == 0


def test_a_follow_up_is_committed_at_once_and_a_new_ticket_with_the_batch(monkeypatch):
    first = make_mail(sender="Sam <sam@example.net>", subject="Visa letter")
    first_id = message_id_of(first)
    _batch(first)
    follow_up = make_mail(
        sender="Sam <sam@example.net>", subject="Re: Visa letter", in_reply_to=f"<{first_id}>"
    )
    events = []
    stored = records.store_message

    def store_message(ticket, facts, *args, **kwargs):
        events.append(facts.mail.subject)
        return stored(ticket, facts, *args, **kwargs)

    def committed(session):
        # Jobs run inline after a commit commit too; one mark per commit of the batch.
        if events and events[-1] != "commit":
            events.append("commit")

    monkeypatch.setattr(records, "store_message", store_message)
    sa.event.listen(db.session, "after_commit", committed)
    try:
        results = _batch(
            follow_up,
            make_mail(sender="Kim <kim@example.org>", subject="Hotel"),
            make_mail(sender="Alex <alex@example.com>", subject="Visa"),
        )
    finally:
        sa.event.remove(db.session, "after_commit", committed)
    assert _outcomes(results) == ["tickets", "tickets", "tickets"]
    if db.engine.dialect.name == "sqlite":
        # One writer locks the whole database: every ticket mail is committed at once.
        assert events == ["Re: Visa letter", "commit", "Hotel", "commit", "Visa", "commit"]
    else:
        # Agents may be working on the existing ticket; nobody else sees the new ones yet.
        assert events == ["Re: Visa letter", "commit", "Hotel", "Visa", "commit"]
