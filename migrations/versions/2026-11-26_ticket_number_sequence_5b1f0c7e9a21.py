"""ticket number sequence: PostgreSQL hands out ticket numbers without a row lock

Revision ID: 5b1f0c7e9a21
Revises: 213ba449b305
Create Date: 2026-11-26 01:30:00.000000

The counters row locked every transaction that opened a ticket until it committed, so
two ingest processes opening tickets took turns. A sequence never waits; a transaction
that rolls back leaves a gap in the numbers, which are unique and increasing either way.
SQLite (one writer at a time) keeps the counter.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "5b1f0c7e9a21"
down_revision = "213ba449b305"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE ticket_number_seq MINVALUE 1")
    # Continue after the highest number handed out so far, by the counter or otherwise.
    op.execute(
        "SELECT setval('ticket_number_seq', GREATEST("
        "(SELECT COALESCE(MAX(number), 0) FROM tickets),"
        " (SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'ticket_number')"
        ") + 1, false)"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'ticket_number', COALESCE(MAX(number), 0) "
        "FROM tickets ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, "
        "EXCLUDED.value)"
    )
    op.execute("DROP SEQUENCE ticket_number_seq")
