"""The global suppression list: addresses that get no more bulk mail, whatever their lists.

Hard bounces and complaints come from the ingester (bounce and complaint records) and from
provider events; ``unsubscribe_all`` from a subscriber's own choice; ``manual`` from an
organiser. The campaign engine checks this list when it claims a batch; transactional mail
honours only hard bounces and complaints.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from helpdesk import addresses, audit
from helpdesk.database import upsert, utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason

# What a suppression means for the subscriber row with the same address.
_SUBSCRIBER_STATUS = {
    SuppressionReason.HARD_BOUNCE: SubscriberStatus.BOUNCED,
    SuppressionReason.COMPLAINT: SubscriberStatus.COMPLAINED,
    SuppressionReason.UNSUBSCRIBE_ALL: SubscriberStatus.UNSUBSCRIBED,
}


def among(column, values: list) -> sa.ColumnElement[bool]:
    """``column IN values``; one array parameter on PostgreSQL, where a thousand
    placeholders would cost more to send than the query to run."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.literal(list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def suppress(address: str, reason: SuppressionReason | str, source: str = "") -> bool:
    """Put ``address`` on the suppression list; True when it was not there before.

    Idempotent: an address already listed keeps its first reason. An invalid address is
    ignored (nothing could be sent to it anyway).
    """
    key = addresses.normalize(address)
    if not addresses.is_valid(key):
        return False
    reason = SuppressionReason(reason)
    table = Suppression.__table__
    added = db.session.execute(
        upsert(db.session, table)
        .values(address_key=key, reason=reason.value, source=source[:255], created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[table.c.address_key])
        .returning(table.c.id)
    ).scalar()
    status = _SUBSCRIBER_STATUS.get(reason)
    if status is not None:
        db.session.execute(
            sa.update(Subscriber)
            .where(Subscriber.address_key == key, Subscriber.status == SubscriberStatus.ACTIVE)
            .values(status=status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return added is not None


def is_suppressed(address: str) -> bool:
    """Whether ``address`` is on the suppression list, for any reason."""
    key = addresses.normalize(address)
    return (
        db.session.scalar(sa.select(Suppression.id).where(Suppression.address_key == key))
        is not None
    )


def suppressed_among(keys: Iterable[str]) -> dict[str, SuppressionReason]:
    """The suppressed ones among normalised addresses ``keys``, with their reasons."""
    found: dict[str, SuppressionReason] = {}
    keys = list(keys)
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        rows = db.session.execute(
            sa.select(Suppression.address_key, Suppression.reason).where(
                among(Suppression.address_key, chunk)
            )
        )
        found.update({key: SuppressionReason(reason) for key, reason in rows})
    return found


def add_manual(address: str, note: str, *, actor_id: int | None) -> Suppression:
    """An organiser suppresses ``address`` by hand (audited)."""
    address = addresses.require_valid(address, field="address")
    key = addresses.normalize(address)
    existing = db.session.scalar(sa.select(Suppression).where(Suppression.address_key == key))
    if existing is not None:
        raise ServiceError(
            f"{key} is already suppressed ({existing.reason.value})", field="address"
        )
    row = Suppression(
        address_key=key, reason=SuppressionReason.MANUAL, source=(note.strip() or "manual")[:255]
    )
    db.session.add(row)
    db.session.flush()
    audit.record("suppression.added", actor_id=actor_id, address=key, note=note.strip()[:255])
    return row


def remove_manual(suppression_id: int, *, actor_id: int | None) -> str:
    """Lift a manual suppression (audited); other reasons cannot be lifted here."""
    row = db.session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound("no such suppression")
    if row.reason != SuppressionReason.MANUAL:
        raise ServiceError(
            f"only manual suppressions can be removed; this one is {row.reason.value}",
            field="reason",
        )
    key = row.address_key
    db.session.delete(row)
    db.session.flush()
    audit.record("suppression.removed", actor_id=actor_id, address=key, source=row.source)
    return key


def search_suppressions(
    query: str = "", reason: str = "", *, page: int = 1, per_page: int = 50
) -> tuple[list[Suppression], int]:
    """One page of the suppression list (newest first) and the number of matches."""
    stmt = sa.select(Suppression)
    if query.strip():
        stmt = stmt.where(Suppression.address_key.contains(addresses.normalize(query)))
    if reason:
        try:
            stmt = stmt.where(Suppression.reason == SuppressionReason(reason))
        except ValueError:
            raise ServiceError(f"unknown reason {reason!r}", field="reason") from None
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(
        stmt.order_by(Suppression.id.desc()).limit(per_page).offset((max(page, 1) - 1) * per_page)
    )
    return list(rows), total
