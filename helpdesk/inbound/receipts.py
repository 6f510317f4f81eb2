"""The ingester's bookkeeping rows: raw mails by SHA-256, and the receipts that make
ingestion idempotent (this mail was handled in this scope).

Written as plain Core, for one mail or a whole batch with one statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from helpdesk.database import upsert, utcnow
from helpdesk.extensions import db
from helpdesk.inbound.reports import CHUNK
from helpdesk.models import InboundReceipt, RawMail, ReceiptOutcome

if TYPE_CHECKING:
    from helpdesk.inbound.facts import MailFacts


def raw_rows(sizes: dict[str, int]) -> dict[str, int]:
    """The ids of the raw mail rows by SHA-256 (sizes by SHA-256 given), inserted where new."""
    table = RawMail.__table__
    ids: dict[str, int] = {}
    now = utcnow()
    # Sorted, so that two processes inserting the same rows take their locks in one order.
    rows = [{"sha256": k, "size": v, "created_at": now} for k, v in sorted(sizes.items())]
    statement = upsert(db.session, table)
    # DO UPDATE rather than DO NOTHING: RETURNING then yields existing rows too. The rows
    # go as parameters, so the statement is compiled once.
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.sha256], set_={"size": statement.excluded.size}
    ).returning(table.c.sha256, table.c.id)
    ids.update((sha, i) for sha, i in db.session.connection().execute(statement, rows))
    return ids


def raw_row(sha256: str, size: int) -> int:
    """The id of the raw mail row for ``sha256``, inserted if new."""
    return raw_rows({sha256: size})[sha256]


def scopes_seen(keys: list[str]) -> dict[str, set[str]]:
    """The scopes in which mails with these receipt keys were already handled."""
    table = InboundReceipt.__table__
    wanted = sorted(set(keys))
    seen: dict[str, set[str]] = {}
    connection = db.session.connection()
    for start in range(0, len(wanted), CHUNK):
        rows = connection.execute(
            sa.select(table.c.dedupe_key, table.c.scope).where(
                table.c.dedupe_key.in_(wanted[start : start + CHUNK])
            )
        )
        for key, scope in rows:
            seen.setdefault(key, set()).add(scope)
    return seen


def receipt_row(
    facts: MailFacts,
    scope: str,
    outcome: ReceiptOutcome,
    raw_id: int,
    *,
    ticket_id: int | None = None,
    message_id: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """The values of a receipt: the mail's key (its dedupe key unless given) in ``scope``."""
    return {
        "dedupe_key": key or facts.dedupe_key,
        "scope": scope,
        "outcome": outcome,
        "raw_mail_id": raw_id,
        "ticket_id": ticket_id,
        "message_id": message_id,
        "tombstone": False,
        "created_at": utcnow(),
    }


def insert_receipt(
    facts: MailFacts, scope: str, outcome: ReceiptOutcome, raw_id: int, **ids: int | None
) -> None:
    """Write a receipt at once."""
    db.session.connection().execute(
        sa.insert(InboundReceipt.__table__).values(
            receipt_row(facts, scope, outcome, raw_id, **ids)
        )
    )
