"""campaign event counts: provider events per campaign, kind and hour

Revision ID: 213ba449b305
Revises: 47fc30a86952
Create Date: 2026-11-26 00:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "213ba449b305"
down_revision = "47fc30a86952"
branch_labels = None
depends_on = None

_events = sa.table(
    "provider_events",
    sa.column("event"),
    sa.column("delivery_id"),
    sa.column("occurred_at"),
    sa.column("received_at"),
)
_deliveries = sa.table("deliveries", sa.column("id"), sa.column("campaign_id"))
_counts = sa.table(
    "campaign_event_counts",
    sa.column("campaign_id"),
    sa.column("event"),
    sa.column("hour"),
    sa.column("total"),
)


def _hour(dialect: str):
    """Whole hours since the epoch of the event (of its arrival when the provider gave none)."""
    when = sa.func.coalesce(_events.c.occurred_at, _events.c.received_at)
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", when), sa.Integer) // 3600
    return sa.cast(sa.func.floor(sa.extract("epoch", when) / 3600), sa.Integer)


def upgrade():
    op.create_table(
        "campaign_event_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_event_counts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "event", "hour", name=op.f("pk_campaign_event_counts")
        ),
    )
    # The events received so far, counted once here; new ones are added as they arrive.
    hour = _hour(op.get_bind().dialect.name)
    keys = (_deliveries.c.campaign_id, _events.c.event, hour)
    op.execute(
        _counts.insert().from_select(
            ["campaign_id", "event", "hour", "total"],
            sa.select(*keys, sa.func.count())
            .select_from(_events.join(_deliveries, _deliveries.c.id == _events.c.delivery_id))
            .group_by(*keys),
        )
    )


def downgrade():
    op.drop_table("campaign_event_counts")
