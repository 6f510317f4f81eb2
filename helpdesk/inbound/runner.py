"""Running the IMAP fetcher against the database: mailboxes, handler, watermarks, health.

The fetch layer (helpdesk.inbound.fetch/watch) knows nothing of the app; here each call it
makes (handle a mail, read or advance a watermark, report health) runs in its own app
context with its own database session, so the per-mailbox threads never share one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask

from helpdesk import audit
from helpdesk.extensions import db
from helpdesk.inbound.alerts import alert_admins
from helpdesk.inbound.batch import ingest_batch
from helpdesk.inbound.fetch import fetch_once
from helpdesk.inbound.fetch_errors import FetchIncomplete
from helpdesk.inbound.imap import ImapError
from helpdesk.inbound.ingest import Source, ingest, make_durable
from helpdesk.inbound.mailbox import FetchedMail, MailboxConfig
from helpdesk.inbound.mailboxes import DatabaseCheckpoint, connection_config, record_health
from helpdesk.inbound.watch import MailboxHealth, run_forever
from helpdesk.models import Mailbox
from helpdesk.outbound.transactional import requeue_unsent, sweep_stale_sending

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 300.0
MAINTENANCE_AGE = timedelta(minutes=5)


def mailbox_configs(names: Sequence[str] = ()) -> list[MailboxConfig]:
    """Configurations of the enabled mailboxes (all, or those named)."""
    stmt = sa.select(Mailbox).where(Mailbox.enabled.is_(True)).order_by(Mailbox.name)
    if names:
        stmt = stmt.where(Mailbox.name.in_([n.lower() for n in names]))
    boxes = list(db.session.scalars(stmt))
    missing = {n.lower() for n in names} - {b.name for b in boxes}
    if missing:
        raise LookupError(f"no enabled mailbox {', '.join(sorted(missing))}")
    return [connection_config(box) for box in boxes]


class AppCheckpoint:
    """The database watermarks, callable from the fetcher's threads."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.store = DatabaseCheckpoint()

    def get(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        """The folder's (UIDVALIDITY, last UID)."""
        with self.app.app_context():
            return self.store.get(mailbox, folder)

    def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Move the folder's watermark forward."""
        with self.app.app_context():
            self.store.advance(mailbox, folder, uidvalidity, uid)


def _source(mail: FetchedMail) -> Source:
    return Source(
        f"{mail.mailbox}/{mail.folder} UID {mail.uid}",
        mail.mailbox,
        mail.folder,
        mail.uidvalidity,
        mail.uid,
    )


class AppHandler:
    """Runs fetched mail through the ingest pipeline, each mail in its own transaction."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, mail: FetchedMail) -> None:
        """Ingest one mail durably. Raises only when it could not be stored (database
        down): the fetcher then keeps its watermark and offers the mail again later."""
        with self.app.app_context():
            ingest(mail.raw, _source(mail))

    def handle_batch(self, mails: list[FetchedMail]) -> list[BaseException | None]:
        """Ingest a batch in one transaction, flushing to disk once at the end."""
        with self.app.app_context():
            outcomes = ingest_batch([(mail.raw, _source(mail)) for mail in mails])
            make_durable()
        return [o if isinstance(o, Exception) else None for o in outcomes]


def recover_outbound(app: Flask, older_than: timedelta = MAINTENANCE_AGE) -> None:
    """Deliver transactional mail a dead process left queued; flag abandoned hand-offs."""
    with app.app_context():
        requeued = requeue_unsent(older_than)
        uncertain = sweep_stale_sending()
        if requeued or uncertain:
            log.info("%d queued mail(s) requeued, %d marked uncertain", requeued, uncertain)


class AppHealth:
    """Writes each mailbox's health; audits and mails the admins when a mailbox starts or
    stops failing.

    It also recovers transactional mail now and then (acknowledgements of mail ingested
    just before a crash), since a fetcher may be the only process running jobs inline.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL

    def __call__(self, report: MailboxHealth) -> None:
        with self.lock:
            due = time.monotonic() >= self.next_maintenance
            if due:
                self.next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL
        if due:
            recover_outbound(self.app)
        with self.app.app_context():
            box = db.session.scalar(sa.select(Mailbox).where(Mailbox.name == report.mailbox))
            was_failing = box is not None and not box.healthy
            record_health(report.mailbox, ok=report.ok, error=report.last_error, at=report.at)
            if not report.ok and not was_failing:
                log.error("mailbox %s is failing: %s", report.mailbox, report.last_error)
                audit.record(
                    "mailbox.failing", mailbox=report.mailbox, error=(report.last_error or "")[:500]
                )
                alert_admins(report.mailbox, failing=True, error=report.last_error)
                db.session.commit()
            elif report.ok and was_failing:
                log.warning("mailbox %s works again", report.mailbox)
                audit.record("mailbox.recovered", mailbox=report.mailbox)
                alert_admins(report.mailbox, failing=False)
                db.session.commit()


def make_handler(app: Flask, workers: int):
    """The fetch handler: in this process, or spread over ``workers`` processes."""
    if workers > 1 and app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Its writers would fail on each other's locks ("database is locked") for no gain.
        log.warning("SQLite takes one writer at a time: ingesting in one process")
        workers = 1
    if workers <= 1:
        return AppHandler(app)
    from helpdesk.inbound.parallel import ParallelIngester

    return ParallelIngester(app, workers)


def fetch_all_once(
    app: Flask, configs: list[MailboxConfig], batch_size: int, workers: int = 1, handle=None
) -> bool:
    """Fetch every mailbox once (for cron). Returns False when any mailbox failed.

    ``handle`` is a handler from :func:`make_handler` to use (and leave open) instead of
    starting one for ``workers``.
    """
    recover_outbound(app, timedelta(0))
    if handle is not None:
        return _fetch_each(app, configs, batch_size, handle)
    handle = make_handler(app, workers)
    try:
        return _fetch_each(app, configs, batch_size, handle)
    finally:
        if hasattr(handle, "close"):
            handle.close()


def _fetch_each(app: Flask, configs: list[MailboxConfig], batch_size: int, handle) -> bool:
    checkpoint, health = AppCheckpoint(app), AppHealth(app)
    ok = True
    for config in configs:
        try:
            count = fetch_once(config, checkpoint, handle, batch_size=batch_size)
        except (FetchIncomplete, ImapError, OSError) as error:
            ok = False
            log.error("mailbox %s: %s", config.name, error)
            health(_report(config.name, ok=False, error=str(error)))
            continue
        log.info("mailbox %s: %d mail(s) handled", config.name, count)
        health(_report(config.name, ok=True, error=None))
    return ok


def _report(name: str, *, ok: bool, error: str | None) -> MailboxHealth:
    from helpdesk.database import utcnow

    now = utcnow()
    return MailboxHealth(
        mailbox=name,
        ok=ok,
        at=now,
        last_success=now if ok else None,
        last_error=error,
        last_error_at=None if ok else now,
        lag_seconds=0.0,
        consecutive_failures=0 if ok else 1,
        handled=0,
        idle=None,
    )


def watch(app: Flask, configs: list[MailboxConfig], batch_size: int, workers: int = 1) -> None:
    """Fetch and wait for new mail until SIGTERM or SIGINT."""
    stop = threading.Event()
    handle = make_handler(app, workers)

    def request_stop(signum, _frame) -> None:
        log.info("stopping on signal %d", signum)
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    # What a previous run left queued is delivered now (its process is gone).
    recover_outbound(app, timedelta(0))
    try:
        run_forever(
            configs,
            AppCheckpoint(app),
            handle,
            stop,
            AppHealth(app),
            batch_size=batch_size,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if hasattr(handle, "close"):
            handle.close()
