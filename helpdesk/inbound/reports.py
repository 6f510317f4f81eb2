"""Writing bounce and complaint records, which feed the suppression list.

Reports arrive in bulk (a campaign's bounces come back by the hundred), so they are
collected and written together: one statement per table for a whole batch of mails,
rather than five or more round trips per report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.database import upsert, utcnow
from helpdesk.extensions import db
from helpdesk.models import (
    BounceRecord,
    ComplaintRecord,
    InboundReceipt,
    OutboundMessage,
    Suppression,
    SuppressionReason,
)

if TYPE_CHECKING:
    from helpdesk.inbound.classify import BounceReport, ComplaintReport

# Rows per statement: well under SQLite's limit on bound parameters.
CHUNK = 200


@dataclass
class _Pending:
    kind: str  # "bounce" or "complaint"
    report: Any
    raw_mail_id: int
    receipt: dict[str, Any]


class ReportBatch:
    """Bounce and complaint records (with their receipts), and other mails' receipts,
    waiting to be written."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._receipts: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._pending or self._receipts)

    def add_receipt(self, receipt: dict[str, Any]) -> None:
        """Queue the receipt of another mail (one that opened or joined a ticket), to be
        written with the rest before the transaction commits."""
        self._receipts.append(receipt)

    def add_bounce(self, report: BounceReport, raw_mail_id: int, receipt: dict[str, Any]) -> None:
        """Queue a bounce record, the suppression of its hard-bounced addresses, and the
        mail's receipt."""
        self._pending.append(_Pending("bounce", report, raw_mail_id, receipt))

    def add_complaint(
        self, report: ComplaintReport, raw_mail_id: int, receipt: dict[str, Any]
    ) -> None:
        """Queue a complaint record, the suppression of the complaining addresses, and the
        mail's receipt."""
        self._pending.append(_Pending("complaint", report, raw_mail_id, receipt))

    def suppresses(self, address: str | None) -> bool:
        """Whether a queued report will put ``address`` on the suppression list."""
        if not address:
            return False
        key = addresses.normalize(address)
        return any(
            addresses.normalize(found) == key
            for p in self._pending
            for found, _ in _suppressed_addresses(p)
        )

    def flush(self) -> None:
        """Write everything queued, in the current transaction."""
        pending, self._pending = self._pending, []
        receipts, self._receipts = self._receipts, []
        if not pending:
            _insert_many(InboundReceipt.__table__, receipts)
            return
        outbound = _outbound_ids(p.report.original_message_id for p in pending)
        suppressions: dict[str, tuple[SuppressionReason, str]] = {}
        tables = (("bounce", BounceRecord.__table__), ("complaint", ComplaintRecord.__table__))
        for kind, table in tables:
            group = [p for p in pending if p.kind == kind]
            if not group:
                continue
            ids = _insert_records(table, [_record_row(p, outbound) for p in group])
            for p in group:
                source = f"{kind} record {ids[p.raw_mail_id]}"
                for address, reason in _suppressed_addresses(p):
                    key = addresses.normalize(address)
                    if addresses.is_valid(key):
                        # The first reason is kept, as on the list itself.
                        suppressions.setdefault(key, (reason, source))
        _insert_suppressions(suppressions)
        _insert_many(InboundReceipt.__table__, [p.receipt for p in pending] + receipts)


def _record_row(p: _Pending, outbound: dict[str, int]) -> dict[str, Any]:
    report = p.report
    row: dict[str, Any] = {
        "raw_mail_id": p.raw_mail_id,
        "original_message_id": report.original_message_id,
        "outbound_message_id": outbound.get(report.original_message_id or ""),
        "created_at": utcnow(),
    }
    if p.kind == "bounce":
        row["recipients"] = [
            {
                "address": r.address,
                "status": r.status,
                "action": r.action,
                "diagnostic": (r.diagnostic or "")[:2000],
                "permanent": r.permanent,
            }
            for r in report.recipients
        ]
    else:
        row["feedback_type"] = (report.feedback_type or "abuse")[:64]
        row["recipients"] = list(report.original_recipients)
    return row


def _suppressed_addresses(p: _Pending) -> list[tuple[str, SuppressionReason]]:
    if p.kind == "bounce":
        return [
            (r.address, SuppressionReason.HARD_BOUNCE) for r in p.report.recipients if r.permanent
        ]
    return [(a, SuppressionReason.COMPLAINT) for a in p.report.original_recipients]


def _outbound_ids(message_ids: Iterable[str | None]) -> dict[str, int]:
    """The ids of the mails we sent, by the Message-IDs the reports name."""
    wanted = sorted({m for m in message_ids if m})
    if not wanted:
        return {}
    table = OutboundMessage.__table__
    found: dict[str, int] = {}
    connection = db.session.connection()
    for start in range(0, len(wanted), CHUNK):
        chunk = [m.strip("<>") for m in wanted[start : start + CHUNK]]
        rows = connection.execute(
            sa.select(table.c.message_id, table.c.id).where(table.c.message_id.in_(chunk))
        )
        by_bare = {m: i for m, i in rows}
        for original in wanted[start : start + CHUNK]:
            if original.strip("<>") in by_bare:
                found[original] = by_bare[original.strip("<>")]
    return found


def _insert_records(table: sa.Table, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert bounce or complaint records; their ids by raw mail id."""
    # Rows as parameters, not in the statement: it is compiled once, and SQLAlchemy sends
    # the rows as multi-row VALUES pages.
    result = db.session.connection().execute(
        sa.insert(table).returning(table.c.raw_mail_id, table.c.id), rows
    )
    return {a: b for a, b in result}


def _insert_suppressions(rows: dict[str, tuple[SuppressionReason, str]]) -> None:
    """Put addresses on the suppression list; an address already there keeps its reason."""
    if not rows:
        return
    table = Suppression.__table__
    now = utcnow()
    values = [
        {"address_key": key, "reason": reason.value, "source": source[:255], "created_at": now}
        for key, (reason, source) in sorted(rows.items())
    ]
    db.session.connection().execute(
        upsert(db.session, table).on_conflict_do_nothing(index_elements=[table.c.address_key]),
        values,
    )


def _insert_many(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        db.session.connection().execute(sa.insert(table), rows)
