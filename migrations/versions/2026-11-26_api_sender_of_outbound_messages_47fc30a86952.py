"""outbound messages: the agent whose API key sent them

Revision ID: 47fc30a86952
Revises: 183c28f5e29e
Create Date: 2026-11-25 18:35:18.842103

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "47fc30a86952"
down_revision = "183c28f5e29e"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_user_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbound_messages_api_user_id"), ["api_user_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbound_messages_api_user_id_users"),
            "users",
            ["api_user_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbound_messages_api_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_outbound_messages_api_user_id"))
        batch_op.drop_column("api_user_id")
