"""The inbound pipeline: raw bytes -> stored -> parsed -> classified -> threaded/routed -> rows.

Per mail: the raw bytes are written to the content-addressed store first, so nothing is
ever lost; then one transaction writes the tickets, messages, attachments, bounce or
complaint records and the dedupe receipts. Only after that commit does the fetcher advance
its watermark. A mail seen again (crash, rescan, a second mailbox) finds its receipts and
changes nothing. A mail that fails anywhere is quarantined with its raw bytes and the
reason; database outages are not the mail's fault and are raised for the caller to retry.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from helpdesk import notifications
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.inbound import records
from helpdesk.inbound.acknowledge import plan_acknowledgement, write_acknowledgement
from helpdesk.inbound.facts import MailFacts, mail_facts
from helpdesk.inbound.receipts import insert_receipt, raw_row, receipt_row, scopes_seen
from helpdesk.inbound.reports import ReportBatch
from helpdesk.inbound.threading import continues_in_place, find_thread
from helpdesk.models import (
    QuarantinedMail,
    ReceiptOutcome,
    Ticket,
    TicketLink,
)
from helpdesk.outbound.unsubscribe import unsubscribe_by_mail
from helpdesk.storage import raw_mail_store
from helpdesk.ticket_rows import OpenedTicket, insert_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where a mail came from (for quarantine entries and logs)."""

    description: str
    mailbox: str | None = None
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass
class IngestResult:
    """What became of one mail."""

    raw_mail_id: int
    # tickets | duplicate | bounce | complaint | auto_reply | own_mail | unsubscribe | quarantined
    outcome: str
    ticket_numbers: list[int] = field(default_factory=list)
    new_ticket_numbers: list[int] = field(default_factory=list)
    quarantine_id: int | None = None


class Stage:
    """The step a mail was in when it failed, for the quarantine entry."""

    def __init__(self) -> None:
        self.name = "store"


def is_database_outage(error: BaseException) -> bool:
    """Whether the database, not the mail, failed: worth offering the mail again later.

    A conflicting row (IntegrityError) is a race settled by a second pass; a value the
    database refuses (DataError) is the mail's, and retrying it would stop the mailbox.
    """
    return isinstance(error, DBAPIError) and not isinstance(error, (IntegrityError, DataError))


def ingest(raw: bytes, source: Source, *, durable: bool = True) -> IngestResult:
    """Run one mail through the pipeline and commit; quarantine it when it cannot be handled.

    ``durable=False`` is for batch callers (the fetcher): the raw file is not flushed and
    PostgreSQL does not wait for the commit to reach the disk. The caller must call
    :func:`make_durable` before it treats the batch as done (advances its watermark);
    until then a crash loses at most work that will be fetched and done again.
    """
    sha256 = raw_mail_store().put(raw, durable=durable)
    stage = Stage()
    for attempt in (1, 2):
        try:
            if not durable:
                commit_asynchronously()
            result = _ingest(raw, sha256, source, stage)
            db.session.commit()
            return result
        except IntegrityError:
            # Another process handled the same mail at the same moment: the second pass
            # finds its receipts.
            db.session.rollback()
            if attempt == 2:
                raise
        except Exception as error:
            db.session.rollback()
            if is_database_outage(error):
                raise
            log.warning(
                "quarantining mail from %s at %s: %s", source.description, stage.name, error
            )
            return quarantine(raw, sha256, source, stage.name, error)
    raise AssertionError("unreachable")


def commit_asynchronously() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))


def make_durable() -> None:
    """Flush what batch ingestion left unflushed: raw files, and PostgreSQL's log.

    A synchronous commit waits for the write-ahead log up to itself, so it also covers
    every asynchronous commit before it.
    """
    raw_mail_store().sync()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT txid_current()"))
    db.session.commit()


def quarantine(
    raw: bytes, sha256: str, source: Source, stage: str, error: BaseException
) -> IngestResult:
    """Keep a mail that could not be handled, with the reason, and commit."""
    result = quarantine_entry(raw_row(sha256, len(raw)), source, stage, error)
    db.session.commit()
    return result


def quarantine_entry(raw_id: int, source: Source, stage: str, error: BaseException) -> IngestResult:
    """Add (or update) the quarantine entry of a stored mail, in the current transaction."""
    reason = "".join(traceback.format_exception_only(type(error), error)).strip()
    entry = db.session.scalar(
        sa.select(QuarantinedMail).where(
            QuarantinedMail.raw_mail_id == raw_id, QuarantinedMail.resolved_at.is_(None)
        )
    )
    if entry is None:
        entry = QuarantinedMail(
            raw_mail_id=raw_id,
            source=source.description,
            mailbox=source.mailbox,
            folder=source.folder,
            uidvalidity=source.uidvalidity,
            uid=source.uid,
            stage=stage,
            error=reason[:10000],
        )
        db.session.add(entry)
    else:
        entry.attempts += 1
        entry.stage, entry.error = stage, reason[:10000]
    db.session.flush()
    return IngestResult(raw_id, "quarantined", quarantine_id=entry.id)


def _ingest(raw: bytes, sha256: str, source: Source, stage: Stage) -> IngestResult:
    stage.name = "store"
    raw_id = raw_row(sha256, len(raw))
    stage.name = "parse"
    facts = mail_facts(raw, sha256, stage)
    seen = scopes_seen([facts.receipt_key]).get(facts.receipt_key, set())
    return write(facts, raw_id, seen, stage)


def write(
    facts: MailFacts,
    raw_id: int,
    seen: set[str],
    stage: Stage,
    reports: ReportBatch | None = None,
) -> IngestResult:
    """Write what the mail means, in the current transaction, unless ``seen`` (the scopes
    its receipt key was handled in, updated here) says it was handled already.

    Bounce and complaint records are queued on ``reports`` when given (the caller flushes
    it), else written at once.
    """
    from helpdesk.inbound.classify import MailKind

    kind = facts.classification.kind
    if "own_mail" in facts.classification.rules:
        if "own_mail" not in seen:
            seen.add("own_mail")
            insert_receipt(facts, "own_mail", ReceiptOutcome.OWN_MAIL_DROPPED, raw_id)
            log.info("dropped our own mail %s coming back", facts.mail.message_id)
        return IngestResult(raw_id, "own_mail")
    if facts.is_report:
        stage.name = "record"
        scope = kind.value
        if scope in seen:
            return IngestResult(raw_id, "duplicate")
        seen.add(scope)
        batch = reports if reports is not None else ReportBatch()
        receipt = receipt_row(facts, scope, ReceiptOutcome(scope), raw_id, key=facts.report_key)
        if kind is MailKind.BOUNCE:
            batch.add_bounce(facts.classification.bounce, raw_id, receipt)
        else:
            batch.add_complaint(facts.classification.complaint, raw_id, receipt)
        if reports is None:
            batch.flush()
        return IngestResult(raw_id, scope)
    if reports is not None and reports.suppresses(facts.sender_address):
        # The mail's acknowledgement must see the sender suppressed by a queued report.
        reports.flush()
    return _write_mail(facts, raw_id, seen, stage, reports)


def _write_mail(
    facts: MailFacts, raw_id: int, seen: set[str], stage: Stage, reports: ReportBatch | None
) -> IngestResult:
    from helpdesk.inbound.classify import MailKind

    def receipt(scope: str, outcome: ReceiptOutcome, **ids: int | None) -> None:
        # Queued with a batch's other receipts when there is a batch.
        if reports is None:
            insert_receipt(facts, scope, outcome, raw_id, **ids)
        else:
            reports.add_receipt(receipt_row(facts, scope, outcome, raw_id, **ids))

    kind = facts.classification.kind
    if kind is not MailKind.AUTO_REPLY:
        stage.name = "unsubscribe"
        # A mailto: unsubscribe (List-Unsubscribe) with a valid token opens no ticket;
        # one without a token reaches a person through the usual routing.
        if unsubscribe_by_mail(facts.recipients(), facts.mail.subject or "") is not None:
            return IngestResult(raw_id, "unsubscribe")

    stage.name = "thread"
    match = find_thread(
        in_reply_to=facts.mail.in_reply_to,
        references=facts.mail.references,
        subject=facts.mail.subject,
        sender=facts.sender_address,
    )

    if kind is MailKind.AUTO_REPLY:
        stage.name = "store"
        numbers = []
        for ticket in match.tickets:
            scope = f"committee:{ticket.committee_id}"
            if scope in seen:
                continue
            seen.add(scope)
            message_id = records.store_message(ticket, facts, raw_id, reopen=False)
            receipt(
                scope,
                ReceiptOutcome.AUTO_REPLY_ATTACHED,
                ticket_id=ticket.id,
                message_id=message_id,
            )
            numbers.append(ticket.number)
        if not match.tickets and "auto_reply" not in seen:
            seen.add("auto_reply")
            receipt("auto_reply", ReceiptOutcome.AUTO_REPLY_DROPPED)
        return IngestResult(raw_id, "auto_reply", ticket_numbers=numbers)

    stage.name = "route"
    targets = _targets(facts, match)
    stage.name = "store"
    result = IngestResult(raw_id, "tickets")
    for committee_id, ticket, linked_from in targets:
        scope = f"committee:{committee_id}"
        if scope in seen:
            continue
        seen.add(scope)
        if ticket is not None:
            message_id = records.store_message(ticket, facts, raw_id, reopen=True)
            receipt(scope, ReceiptOutcome.FOLLOW_UP, ticket_id=ticket.id, message_id=message_id)
            result.ticket_numbers.append(ticket.number)
            notifications.customer_replied(ticket, message_id)
            continue
        opened, message_id = records.open_ticket(committee_id, facts, raw_id)
        insert_rows(
            TicketLink.__table__,
            [
                {"ticket_id": opened.id, "linked_number": number, "kind": kind_of_link}
                for number, kind_of_link in linked_from
            ],
        )
        receipt(scope, ReceiptOutcome.TICKET_CREATED, ticket_id=opened.id, message_id=message_id)
        result.ticket_numbers.append(opened.number)
        result.new_ticket_numbers.append(opened.number)
        _acknowledge_safely(opened, facts)
    if not result.ticket_numbers:
        result.outcome = "duplicate"
    return result


def _acknowledge_safely(ticket: OpenedTicket, facts: MailFacts) -> None:
    """Acknowledge a new ticket; a mail we cannot acknowledge still gets its ticket.

    The acknowledgement is composed (template, addresses) before anything is written, so
    a failure to compose it leaves nothing behind to roll back.
    """
    try:
        plan = plan_acknowledgement(ticket, facts)
    except Exception:
        log.exception("ticket #%s: the acknowledgement could not be composed", ticket.number)
        return
    if plan is not None:
        write_acknowledgement(plan)


def _targets(facts: MailFacts, match) -> list[tuple[int, Ticket | None, list[tuple[int, str]]]]:
    """(committee id, existing ticket or None for a new one, links for a new one)."""
    from helpdesk.inbound.routing import route

    targets: list[tuple[int, Ticket | None, list[tuple[int, str]]]] = []
    covered: set[int] = set()
    for ticket in match.tickets:
        covered.add(ticket.committee_id)
        if continues_in_place(ticket):
            targets.append((ticket.committee_id, ticket, []))
        else:
            targets.append((ticket.committee_id, None, [(ticket.number, "follow_up_of")]))
    routing = facts.routing_input()
    if match.tickets:
        # A reply stays with its tickets; only committees it newly addresses get one.
        addressed = route(routing, addressed_only=True).committee_ids
        targets.extend((c, None, []) for c in addressed if c not in covered)
        return targets
    decision = route(routing)
    facts.route = decision
    links = [(match.referenced_number, "referenced")] if match.referenced_number else []
    targets.extend((c, None, links) for c in decision.committee_ids)
    return targets


def retry_quarantined(quarantine_id: int) -> IngestResult:
    """Run a quarantined mail through the pipeline again; resolves the entry on success."""
    entry = db.session.get(QuarantinedMail, quarantine_id)
    if entry is None:
        raise LookupError(f"no quarantine entry {quarantine_id}")
    raw = raw_mail_store().get(entry.raw_mail.sha256)
    source = Source(
        f"quarantine #{entry.id} ({entry.source})",
        entry.mailbox,
        entry.folder,
        entry.uidvalidity,
        entry.uid,
    )
    result = ingest(raw, source)
    if result.outcome != "quarantined":
        entry = db.session.get(QuarantinedMail, quarantine_id)
        entry.resolved_at = utcnow()
        entry.resolution = f"retried: {result.outcome}"
        db.session.commit()
    return result
