"""Transactional mail: written first, delivered after commit, exactly once, failures classified."""

from __future__ import annotations

import email
from email import policy

import pytest
import sqlalchemy as sa

from helpdesk.inbound.threading import make_message_id
from helpdesk.models import OutboundMessage, OutboundStatus, Suppression
from helpdesk.outbound import transactional
from helpdesk.outbound.transactional import TemporaryDeliveryError, queue_message
from tests.support.smtp_server import SmtpTestServer


def _queue(**overrides):
    fields = dict(
        kind="reply",
        from_addr="Program committee <program@conference.test>",
        to=["Sam Speaker <sam@example.net>"],
        cc=["co@example.net"],
        subject="Re: your talk",
        text="Thursday works.",
        headers={"In-Reply-To": "<abc@example.net>", "References": "<abc@example.net>"},
        message_id=make_message_id(42),
    )
    fields.update(overrides)
    return queue_message(**fields)


def _outbox(app):
    from pathlib import Path

    return sorted(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml"))


def test_a_queued_mail_is_delivered_after_commit_with_its_headers(session, app):
    before = set(_outbox(app))
    row = _queue()
    assert row.status == OutboundStatus.QUEUED
    assert set(_outbox(app)) == before  # nothing leaves before the commit
    session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.SENT
    assert row.attempts == 1
    new = set(_outbox(app)) - before
    assert len(new) == 1
    mail = email.message_from_bytes(new.pop().read_bytes(), policy=policy.default)
    assert mail["Message-ID"] == f"<{row.message_id}>"
    assert mail["In-Reply-To"] == "<abc@example.net>"
    assert mail["To"] == "Sam Speaker <sam@example.net>"
    assert mail["Cc"] == "co@example.net"
    assert row.provider_id


def test_a_rolled_back_mail_is_never_sent(session, app):
    before = set(_outbox(app))
    _queue()
    session.rollback()
    session.commit()
    assert set(_outbox(app)) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_delivering_twice_sends_once(session, app):
    before = set(_outbox(app))
    row = _queue()
    session.commit()
    transactional.deliver(row.id)  # a duplicate job, e.g. after a re-enqueue
    assert len(set(_outbox(app)) - before) == 1


def test_hard_bounced_addresses_are_not_mailed(session, app):
    session.add(Suppression(address_key="sam@example.net", reason="hard_bounce", source="test"))
    before = set(_outbox(app))
    row = _queue()
    session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.SUPPRESSED
    assert set(_outbox(app)) == before


def test_a_list_unsubscribe_does_not_stop_transactional_mail(session, app):
    session.add(Suppression(address_key="sam@example.net", reason="unsubscribe_all", source="t"))
    row = _queue()
    session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.SENT


@pytest.fixture
def smtp(app):
    server = SmtpTestServer().start()
    app.config.update(HELPDESK_MAIL_BACKEND="smtp", HELPDESK_SMTP_URL=server.url())
    yield server
    app.config.update(HELPDESK_MAIL_BACKEND="files", HELPDESK_SMTP_URL=None)
    server.stop()


def test_a_temporary_smtp_failure_keeps_the_mail_queued_for_a_retry(session, app, smtp):
    smtp.behaviour.rcpt_replies["sam@example.net"] = "451 4.7.1 try again later"
    app.config["HELPDESK_JOBS_RAISE"] = False
    try:
        row = _queue(cc=[])
        session.commit()
    finally:
        app.config["HELPDESK_JOBS_RAISE"] = True
    session.refresh(row)
    assert row.status == OutboundStatus.QUEUED
    assert "451" in row.error
    smtp.behaviour.rcpt_replies.clear()
    transactional.deliver(row.id)  # what RQ's retry does
    session.refresh(row)
    assert row.status == OutboundStatus.SENT
    assert row.attempts == 2
    assert [m.rcpt_tos for m in smtp.received] == [["sam@example.net"]]


def test_a_temporary_failure_raises_so_that_rq_retries(session, app, smtp):
    smtp.behaviour.rcpt_replies["sam@example.net"] = "452 mailbox busy"
    row = _queue(cc=[])
    with pytest.raises(TemporaryDeliveryError):
        session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.QUEUED


def test_a_permanent_smtp_failure_is_final(session, app, smtp):
    smtp.behaviour.rcpt_replies["sam@example.net"] = "550 5.1.1 no such user"
    row = _queue(cc=[])
    session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.FAILED
    assert "550" in row.error


def test_a_connection_lost_after_the_data_is_uncertain_and_not_resent(session, app, smtp):
    smtp.behaviour.drop_after_data_for.add("sam@example.net")
    row = _queue(cc=[])
    session.commit()
    session.refresh(row)
    assert row.status == OutboundStatus.UNCERTAIN
    transactional.deliver(row.id)
    assert len(smtp.refused_data) + len(smtp.received) <= 1


def test_the_sweeper_marks_abandoned_hand_offs_uncertain(session, app):
    from datetime import timedelta

    from helpdesk.database import utcnow

    row = _queue()
    row.status = OutboundStatus.SENDING
    row.lease_until = utcnow() - timedelta(minutes=1)
    session.flush()
    assert transactional.sweep_stale_sending() == 1
    session.refresh(row)
    assert row.status == OutboundStatus.UNCERTAIN
