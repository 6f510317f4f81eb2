"""ticket number default: PostgreSQL's INSERT takes the number from the sequence itself

Revision ID: 9c4d2e6f1a07
Revises: 5b1f0c7e9a21
Create Date: 2026-11-26 04:20:00.000000

Opening a ticket took the number with a SELECT nextval() before the INSERT; as the
column's default the sequence is read in the INSERT, which returns the number.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "9c4d2e6f1a07"
down_revision = "5b1f0c7e9a21"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE tickets ALTER COLUMN number SET DEFAULT nextval('ticket_number_seq')")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE tickets ALTER COLUMN number DROP DEFAULT")
