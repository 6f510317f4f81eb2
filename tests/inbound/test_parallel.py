"""Ingesting fetched batches in several worker processes (``fetch-mail --workers N``)."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
import sqlalchemy as sa

from helpdesk.committees import add_committee
from helpdesk.extensions import db
from helpdesk.inbound.mailbox import FetchedMail
from helpdesk.inbound.parallel import ParallelIngester, ordered_groups
from helpdesk.inbound.runner import AppHandler, make_handler
from helpdesk.models import BounceRecord, InboundReceipt, QuarantinedMail, Ticket
from helpdesk.storage import raw_mail_store
from tests.inbound.test_ingest import _dsn
from tests.support.mails import make_mail, message_id_of


def _fetched(raws: list[bytes], first_uid: int = 1) -> list[FetchedMail]:
    return [FetchedMail("box", "INBOX", 7, first_uid + i, raw) for i, raw in enumerate(raws)]


def _with_program(app, *, postgres_only: bool = False):
    """``app`` with the program committee committed."""
    if postgres_only and app.config["TEST_DATABASE"] == "sqlite":
        pytest.skip("SQLite takes one writer at a time: no worker processes")
    with app.app_context():
        add_committee("program", "Program", mail_addresses=["program@conference.test"])
        db.session.commit()
    return app


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_two_workers_ingest_a_batch_once_each_and_in_order(committed_app):
    app = committed_app
    if app.config["TEST_DATABASE"] == "sqlite":
        # One writer at a time: more processes would only fail on each other's locks.
        handler = make_handler(app, 2)
        assert isinstance(handler, AppHandler)
        return
    with app.app_context():
        add_committee("program", "Program", mail_addresses=["program@conference.test"])
        db.session.commit()
    opening = make_mail(sender="Sam <sam@example.net>", subject="Visa letter")
    opening_id = message_id_of(opening)
    # A reply in the same batch must find the ticket its original opened.
    reply = make_mail(
        sender="Sam <sam@example.net>", subject="Re: Visa letter", in_reply_to=f"<{opening_id}>"
    )
    strangers = [
        make_mail(sender=f"Person {i} <person{i}@example.org>", subject=f"Question {i}")
        for i in range(12)
    ]
    bounces = [_dsn(f"nothing-{i}@conference.test", f"gone{i}@example.com") for i in range(8)]
    batch = _fetched([opening, *strangers[:6], *bounces, reply, *strangers[6:]])

    ingester = ParallelIngester(app, 2)
    try:
        # Both workers are up before the first batch, not started one by one on demand.
        assert len(ingester.pool._processes) == 2
        errors = ingester.handle_batch(batch)
        again = ingester.handle_batch(_fetched([opening, bounces[0]], first_uid=100))
    finally:
        ingester.close()

    assert errors == [None] * len(batch)
    assert again == [None, None]
    with app.app_context():
        assert _count(Ticket) == 13
        assert _count(BounceRecord) == 8
        assert _count(InboundReceipt) == len(batch)
        visa = db.session.scalar(sa.select(Ticket).where(Ticket.subject == "Visa letter"))
        assert [m.subject for m in visa.messages if m.direction == "inbound"] == [
            "Visa letter",
            "Re: Visa letter",
        ]
        numbers = db.session.scalars(sa.select(Ticket.number)).all()
        assert len(set(numbers)) == len(numbers)
        db.session.remove()


def test_mails_that_depend_on_each_other_share_a_group_and_bounces_do_not():
    first = make_mail(sender="Sam <sam@example.net>", subject="Visa letter")
    first_id = message_id_of(first)
    reply = make_mail(
        sender="Kim <kim@example.org>", subject="Re: Visa letter", in_reply_to=f"<{first_id}>"
    )
    again = make_mail(sender="sam@EXAMPLE.net", subject="Also")
    other = make_mail(sender="Alex <alex@example.com>", subject="Hotel")
    # Bounces from one provider's MAILER-DAEMON: no acknowledgement, no ticket, so no
    # reason to handle them one after the other in a single worker.
    bounces = [
        make_mail(sender="Mail Delivery Subsystem <MAILER-DAEMON@googlemail.com>", subject=s)
        for s in ("Delivery Status Notification (Failure)", "Undeliverable")
    ]
    groups = ordered_groups([first, other, reply, *bounces, again])
    assert sorted(groups) == [[0, 2, 5], [1], [3], [4]]


def test_a_batch_starts_before_the_one_before_ends_but_waits_where_it_depends_on_it(
    committed_app,
):
    app = _with_program(committed_app, postgres_only=True)
    # Sam's mails form one group, handled one after the other: the last opens "Visa
    # letter" well after the first batch started.
    sams = [make_mail(sender="Sam <sam@example.net>", subject=f"Question {i}") for i in range(11)]
    opening = make_mail(sender="Sam <sam@example.net>", subject="Visa letter")
    # Another person answers in the thread: tied to Sam's mail by its Message-ID only.
    reply = make_mail(
        sender="Kim <kim@example.org>",
        subject="Re: Visa letter",
        in_reply_to=f"<{message_id_of(opening)}>",
    )
    strangers = [
        make_mail(sender=f"Person {i} <person{i}@example.org>", subject=f"Hotel {i}")
        for i in range(4)
    ]
    ingester = ParallelIngester(app, 2)
    try:
        first = ingester.submit_batch(_fetched([*sams, opening]))
        second = ingester.submit_batch(_fetched([reply, *strangers], first_uid=100))
        # The strangers started at once; the reply waits for the first batch.
        assert [len(share) for share, _ in second.futures] == [1, 1, 1, 1]
        assert second.held == [[0]]
        assert first.results() == [None] * 12
        assert second.held == []
        assert second.results() == [None] * 5
    finally:
        ingester.close()
    with app.app_context():
        visa = db.session.scalar(sa.select(Ticket).where(Ticket.subject == "Visa letter"))
        assert [m.subject for m in visa.messages if m.direction == "inbound"] == [
            "Visa letter",
            "Re: Visa letter",
        ]
        assert _count(Ticket) == 16
        db.session.remove()


class _PoisonPool:
    """Runs shares in this process, as a worker would; a share holding a mail with the
    X-Poison header takes its "worker" down."""

    def __init__(self) -> None:
        self.shares: list[list[int]] = []

    def submit(self, fn, items):
        self.shares.append([source[4] for _, source in items])
        future: Future = Future()
        if any(b"X-Poison: yes" in raw for raw, _ in items):
            future.set_exception(BrokenProcessPool("a worker process died"))
        else:
            future.set_result(fn(items))
        return future

    def shutdown(self, **kwargs) -> None:
        pass


class _PoisonIngester(ParallelIngester):
    def _start_pool(self):
        return _PoisonPool()


def test_a_mail_that_takes_its_ingest_process_down_alone_is_quarantined(committed_app, monkeypatch):
    from helpdesk.inbound import parallel

    app = _with_program(committed_app)
    monkeypatch.setattr(parallel, "_worker_app", app)
    raws = [
        make_mail(sender=f"Person {i} <person{i}@example.org>", subject=f"Question {i}")
        for i in range(6)
    ]
    raws[1] = make_mail(subject="Crash", headers={"X-Poison": "yes"})
    mails = _fetched(raws)
    ingester = _PoisonIngester(app, 2)

    first = ingester.handle_batch(mails)
    # The share with the poison failed whole: its other mail too. Both are offered again.
    failed = [m.uid for m, error in zip(mails, first, strict=True) if error is not None]
    assert len(failed) == 2
    assert mails[1].uid in failed
    again = [m for m in mails if m.uid in failed]
    second = ingester.handle_batch(again)

    # Each was then tried alone: the innocent one is ingested, the poison quarantined.
    assert second == [None, None]
    assert ingester.pool.shares[-2:] == [[again[0].uid], [again[1].uid]]
    with app.app_context():
        entry = db.session.scalar(sa.select(QuarantinedMail))
        assert entry.stage == "ingest process"
        assert entry.uid == mails[1].uid
        assert raw_mail_store().get(entry.raw_mail.sha256) == raws[1]
        assert _count(Ticket) == 5
        db.session.remove()
    assert ingester._suspects == set()


def test_a_worker_killed_mid_batch_is_replaced_and_its_mails_are_ingested_once(committed_app):
    app = _with_program(committed_app, postgres_only=True)
    raws = [
        make_mail(sender=f"Person {i} <person{i}@example.org>", subject=f"Question {i}")
        for i in range(40)
    ]
    mails = _fetched(raws)
    ingester = ParallelIngester(app, 2)
    try:
        pending = ingester.submit_batch(mails)
        os.kill(next(iter(ingester.pool._processes)), signal.SIGKILL)
        first = pending.results()
        assert any(error is not None for error in first)
        retry = [m for m, error in zip(mails, first, strict=True) if error is not None]
        # New worker processes take the mails offered again, one by one.
        assert ingester.handle_batch(retry) == [None] * len(retry)
        assert ingester.handle_batch(_fetched([make_mail()], first_uid=100)) == [None]
    finally:
        ingester.close()
    with app.app_context():
        assert _count(Ticket) == 41
        assert _count(QuarantinedMail) == 0
        assert _count(InboundReceipt) == 41
        db.session.remove()


def test_two_mailboxes_share_the_workers_from_their_own_threads(committed_app):
    app = _with_program(committed_app, postgres_only=True)
    boxes = {
        name: [
            [
                make_mail(sender=f"{name} {b}.{i} <{name}{b}-{i}@example.org>", subject="Hello")
                for i in range(15)
            ]
            for b in range(3)
        ]
        for name in ("info", "grants")
    }
    ingester = ParallelIngester(app, 2)
    failures = []

    def fetch(name: str) -> None:
        uid = 1
        for raws in boxes[name]:
            mails = [FetchedMail(name, "INBOX", 7, uid + i, raw) for i, raw in enumerate(raws)]
            uid += len(raws)
            failures.extend(e for e in ingester.handle_batch(mails) if e is not None)

    threads = [threading.Thread(target=fetch, args=(name,)) for name in boxes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        ingester.close()
    assert failures == []
    assert ingester._unfinished == []
    with app.app_context():
        assert _count(Ticket) == 90
        assert _count(InboundReceipt) == 90
        db.session.remove()
