"""Ingesting a fetched batch of mails in one transaction.

The fetcher hands over mail in batches; writing each mail in its own transaction costs
a connection check, a BEGIN and a COMMIT per mail, and a bounce (most of a busy
mailbox) would spend more time on round trips than on being understood. Here a batch is
parsed first, then written in one transaction: the raw-mail rows and the receipt lookup
for the whole batch in one statement each, bounce and complaint records queued and
written together. A mail that opens or updates a ticket is committed at once, so that
the locks it takes are not held for the rest of the batch.

Any failure while writing rolls back what is not yet committed, and the batch's mails go
through the one-at-a-time pipeline instead, which quarantines a mail that cannot be
handled and settles races with other processes (a mail already committed finds its
receipts and changes nothing); so a batch is never worse than its mails alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from helpdesk.extensions import db
from helpdesk.inbound.facts import MailFacts, mail_facts
from helpdesk.inbound.ingest import (
    IngestResult,
    Source,
    Stage,
    commit_asynchronously,
    ingest,
    is_database_outage,
    quarantine_entry,
    write,
)
from helpdesk.inbound.receipts import raw_rows, scopes_seen
from helpdesk.inbound.reports import ReportBatch
from helpdesk.storage import raw_mail_store

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    raw: bytes
    source: Source
    sha256: str
    stage: Stage
    facts: MailFacts | None = None
    error: Exception | None = None


def ingest_batch(items: Sequence[tuple[bytes, Source]]) -> list[IngestResult | Exception]:
    """Ingest mails and commit; per mail its result, or the error that kept it from being
    stored (a database outage: the caller offers it again later).

    Like ``ingest(durable=False)``: the caller calls ``make_durable`` before it treats
    the batch as done.
    """
    if not items:
        return []
    try:
        results: list[IngestResult | Exception] = list(_write_all(_prepare(items)))
        db.session.commit()
        return results
    except Exception as error:
        db.session.rollback()
        log.warning("a batch of %d mail(s) failed (%s); ingesting one at a time", len(items), error)
    return [_ingest_one(raw, source) for raw, source in items]


def _ingest_one(raw: bytes, source: Source) -> IngestResult | Exception:
    try:
        return ingest(raw, source, durable=False)
    except Exception as error:
        db.session.rollback()
        return error


def _prepare(items: Sequence[tuple[bytes, Source]]) -> list[_Prepared]:
    """Store the raw bytes and learn what each mail is, before writing anything."""
    store = raw_mail_store()
    prepared = []
    for raw, source in items:
        entry = _Prepared(raw, source, store.put(raw, durable=False), Stage())
        try:
            entry.stage.name = "parse"
            entry.facts = mail_facts(raw, entry.sha256, entry.stage)
        except Exception as error:
            if is_database_outage(error):
                raise
            entry.error = error
        prepared.append(entry)
    return prepared


def _holds_locks(result: IngestResult) -> bool:
    """Whether a written mail left locks others may wait for: the row of a ticket that
    already existed (agents work on it), and on SQLite the whole database. A ticket opened
    in this transaction is invisible to everyone else until the commit, so nobody waits
    for its rows."""
    if not result.ticket_numbers:
        return False
    if db.session.get_bind().dialect.name == "sqlite":
        return True
    return not set(result.ticket_numbers) <= set(result.new_ticket_numbers)


def _write_all(prepared: list[_Prepared]) -> list[IngestResult]:
    commit_asynchronously()
    raw_ids = raw_rows({p.sha256: len(p.raw) for p in prepared})
    seen = scopes_seen([p.facts.receipt_key for p in prepared if p.facts is not None])
    reports = ReportBatch()
    results = []
    for p in prepared:
        raw_id = raw_ids[p.sha256]
        if p.facts is None:
            assert p.error is not None
            log.warning(
                "quarantining mail from %s at %s: %s", p.source.description, p.stage.name, p.error
            )
            results.append(quarantine_entry(raw_id, p.source, p.stage.name, p.error))
            continue
        scopes = seen.setdefault(p.facts.receipt_key, set())
        result = write(p.facts, raw_id, scopes, p.stage, reports)
        results.append(result)
        if _holds_locks(result):
            # Commit at once rather than hold the locks for the rest of the batch, while
            # agents and the other ingest processes wait; the receipts go with the rows.
            reports.flush()
            db.session.commit()
            commit_asynchronously()
    reports.flush()
    return results
