"""Provider events counted per campaign, kind and hour, as they arrive.

A campaign of 100,000 recipients draws several hundred thousand events; its page reads
these counts (a few hundred rows) instead of counting the events on every view. The counts
are added in the transaction that stores the events, and only for events that were new
there, so they always agree with the events table.
"""

from __future__ import annotations

import sqlalchemy as sa

from helpdesk.database import upsert
from helpdesk.extensions import db
from helpdesk.models import CampaignEventCount, Delivery, ProviderEvent

SECONDS_PER_HOUR = 3600
# Event ids per statement: one statement covers a whole webhook batch in practice, so the
# rows it updates are locked in one order (no deadlock between two batches).
_IDS_PER_STATEMENT = 5000


def _hour_number(column: sa.ColumnElement) -> sa.ColumnElement[int]:
    """Whole hours since the epoch of a UTC timestamp, in the session's SQL dialect."""
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.Integer) // SECONDS_PER_HOUR
    return sa.cast(sa.func.floor(sa.extract("epoch", column) / SECONDS_PER_HOUR), sa.Integer)


def _counted(*where: sa.ColumnElement[bool]) -> sa.Select:
    """Campaign, kind, hour and number of the events about campaign deliveries matching."""
    hour = _hour_number(sa.func.coalesce(ProviderEvent.occurred_at, ProviderEvent.received_at))
    keys = (Delivery.campaign_id, ProviderEvent.event, hour)
    return (
        sa.select(*keys, sa.func.count())
        .join_from(ProviderEvent, Delivery, Delivery.id == ProviderEvent.delivery_id)
        .where(*where)
        .group_by(*keys)
        .order_by(*keys)
    )


def add_events(provider: str, event_ids: list[str]) -> None:
    """Count events just stored into their campaigns' hours; the caller commits.

    Events about no campaign delivery (transactional mail, unmatched) count nowhere.
    """
    for start in range(0, len(event_ids), _IDS_PER_STATEMENT):
        chunk = event_ids[start : start + _IDS_PER_STATEMENT]
        insert = upsert(db.session, CampaignEventCount)
        statement = insert.from_select(
            ["campaign_id", "event", "hour", "total"],
            _counted(ProviderEvent.provider == provider, ProviderEvent.event_id.in_(chunk)),
        ).on_conflict_do_update(
            index_elements=["campaign_id", "event", "hour"],
            set_={"total": CampaignEventCount.total + insert.excluded.total},
        )
        db.session.execute(statement)
