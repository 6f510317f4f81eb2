"""Every file of the shared corpus through the real pipeline, on both databases.

What the ingester owes each file: no crash of the loop; the raw bytes stored; a ticket,
follow-up, bounce, complaint or auto-reply record, or a quarantine entry that says why.
Bounces and auto-replies never open tickets.
"""

from __future__ import annotations

import json
from collections import Counter
from email.utils import make_msgid

import pytest
import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.inbound.ingest import Source, ingest
from helpdesk.inbound.parse import parse
from helpdesk.inbound.quotes import split_reply
from helpdesk.models import BounceRecord, Message, QuarantinedMail, RawMail, Ticket
from helpdesk.storage import raw_mail_store
from tests.support.corpus import CORPUS, mail_files
from tests.support.mails import make_mail

SISIMAI = CORPUS / "sisimai-set-of-emails"
OUTCOMES = {"tickets", "duplicate", "bounce", "complaint", "auto_reply", "own_mail", "quarantined"}


@pytest.fixture
def conference(session, make_committee):
    make_committee("info", triage=True, mail_addresses=["info@conference.test"])


def test_every_corpus_file_is_handled_and_kept(conference):
    # The bsd copies first: the other copies of the same mails are then duplicates.
    files = sorted(mail_files(), key=lambda p: "maildir/bsd/" not in str(p))
    assert len(files) > 1000
    outcomes: dict[str, str] = {}
    first_outcome: dict[str, tuple[str, int]] = {}  # raw sha256 -> (outcome, raw id)
    for path in files:
        raw = path.read_bytes()
        result = ingest(raw, Source(str(path.relative_to(CORPUS))))
        assert result.outcome in OUTCOMES
        row = db.session.get(RawMail, result.raw_mail_id)
        assert raw_mail_store().get(row.sha256) == raw
        # The corpus holds byte-identical copies under other names: a copy is a duplicate
        # of the first one, and counts as what that one became.
        outcome, _ = first_outcome.setdefault(row.sha256, (result.outcome, row.id))
        outcomes[str(path.relative_to(CORPUS))] = outcome

    counted = Counter(outcomes.values())
    assert counted["tickets"] > 100
    assert counted["bounce"] > 600

    # Only what is not mail at all is quarantined; everything else was handled.
    for entry in db.session.scalars(sa.select(QuarantinedMail)):
        assert entry.stage == "parse", (entry.source, entry.error)
        assert "NotMail" in entry.error, (entry.source, entry.error)

    # Auto-replies never open tickets.
    for name in ("rfc3834-01", "rfc3834-02", "rfc3834-03", "rfc3834-04", "rfc3834-05"):
        assert outcomes[f"sisimai-set-of-emails/maildir/bsd/{name}.eml"] == "auto_reply"

    expected = json.loads((SISIMAI / "expected-go-sisimai.json").read_text())["expected"]
    bounces = {
        name: rows
        for name, rows in expected.items()
        if not {r["reason"] for r in rows} & {"feedback", "vacation", "delivered"}
    }
    records = {r.raw_mail_id: r for r in db.session.scalars(sa.select(BounceRecord))}
    detected = matched = 0
    for name, rows in bounces.items():
        key = f"sisimai-set-of-emails/maildir/bsd/{name}"
        if outcomes.get(key) != "bounce":
            continue
        detected += 1
        _, raw_id = first_outcome[_sha256((CORPUS / key).read_bytes())]
        if len(records[raw_id].recipients) == len(rows):
            matched += 1
    # Figures the classifier reaches (see test_classify_corpus.py for the misses by name).
    assert detected / len(bounces) >= 0.985, (detected, len(bounces))
    assert matched / len(bounces) >= 0.97, (matched, len(bounces))
    for name in ("arf-01.eml", "arf-02.eml"):
        assert outcomes[f"sisimai-set-of-emails/maildir/bsd/{name}"] == "complaint"
    # No bounce, complaint or auto-reply opened a ticket: tickets come from personal mail.
    classes = set(db.session.scalars(sa.select(Message.classification).distinct()))
    assert classes <= {"personal", "bulk", "auto_reply", None}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_talon_replies_thread_onto_their_tickets(conference):
    replies = sorted((CORPUS / "talon" / "standard_replies").glob("*.eml"))
    assert len(replies) >= 10
    for path in replies:
        raw = path.read_bytes()
        reply = parse(raw)
        # The mail it answers, as it came in earlier: its Message-ID is what the reply
        # names, or, for clients that name none, the ticket tag in the subject links them.
        original_id = reply.in_reply_to[0] if reply.in_reply_to else make_msgid()
        sender = reply.from_.address if reply.from_ else "someone@example.com"
        first = ingest(
            make_mail(
                sender=sender,
                to="info@conference.test",
                subject="Test",
                message_id=f"<{original_id.strip('<>')}>",
            ),
            Source("original"),
        )
        number = first.new_ticket_numbers[0]
        if not reply.in_reply_to:
            raw = raw.replace(b"Subject: ", f"Subject: [Helpdesk #{number}] ".encode(), 1)
        result = ingest(raw, Source(str(path)))
        assert result.ticket_numbers == [number], path.name
        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
        follow_up = [m for m in ticket.messages if m.direction == "inbound"][-1]
        assert split_reply(follow_up.text).new.strip() == "Hello", path.name
