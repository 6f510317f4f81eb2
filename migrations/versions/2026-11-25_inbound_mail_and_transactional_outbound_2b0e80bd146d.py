"""Mailboxes, receipts, quarantine, routing rules, bounce and complaint records,
transactional outbound mail and suppressions; participants and links on tickets.

Revision ID: 2b0e80bd146d
Revises: ca6a75d0e193
Create Date: 2026-11-25 15:34:24.877130

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "2b0e80bd146d"
down_revision = "ca6a75d0e193"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("oauth2_client_id", sa.String(length=255), nullable=True),
        sa.Column("oauth2_client_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("oauth2_refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("oauth2_token_url", sa.String(length=500), nullable=True),
        sa.Column(
            "folders", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("after_import", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("name", name=op.f("uq_mailboxes_name")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "hard_bounce",
                "complaint",
                "unsubscribe_all",
                "manual",
                name="suppression_reason",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("address_key", name=op.f("uq_suppressions_address_key")),
    )
    op.create_table(
        "mailbox_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_folders_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_folders")),
        sa.UniqueConstraint(
            "mailbox_id", "folder", name=op.f("uq_mailbox_folders_mailbox_id_folder")
        ),
    )
    op.create_table(
        "quarantined_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_mail_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=True),
        sa.Column("folder", sa.String(length=255), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"],
            ["raw_mails.id"],
            name=op.f("fk_quarantined_mails_raw_mail_id_raw_mails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_mails")),
    )
    op.create_index(
        op.f("ix_quarantined_mails_created_at"), "quarantined_mails", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_quarantined_mails_raw_mail_id"), "quarantined_mails", ["raw_mail_id"], unique=False
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "conditions", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("committee_id", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["committee_id"],
            ["committees.id"],
            name=op.f("fk_routing_rules_committee_id_committees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index(
        op.f("ix_routing_rules_committee_id"), "routing_rules", ["committee_id"], unique=False
    )
    op.create_index(op.f("ix_routing_rules_position"), "routing_rules", ["position"], unique=False)
    op.create_table(
        "ticket_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("linked_number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_links_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_links")),
    )
    op.create_index(op.f("ix_ticket_links_ticket_id"), "ticket_links", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_participants",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_participants_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "address", name=op.f("pk_ticket_participants")),
    )
    op.create_table(
        "inbound_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=998), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "ticket_created",
                "follow_up",
                "auto_reply_attached",
                "auto_reply_dropped",
                "bounce",
                "complaint",
                "own_mail_dropped",
                name="receipt_outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("raw_mail_id", sa.Integer(), nullable=False),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_inbound_receipts_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"],
            ["raw_mails.id"],
            name=op.f("fk_inbound_receipts_raw_mail_id_raw_mails"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_inbound_receipts_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_receipts")),
        sa.UniqueConstraint(
            "dedupe_key", "scope", name=op.f("uq_inbound_receipts_dedupe_key_scope")
        ),
    )
    op.create_index(
        op.f("ix_inbound_receipts_message_id"), "inbound_receipts", ["message_id"], unique=False
    )
    op.create_index(
        op.f("ix_inbound_receipts_raw_mail_id"), "inbound_receipts", ["raw_mail_id"], unique=False
    )
    op.create_index(
        op.f("ix_inbound_receipts_ticket_id"), "inbound_receipts", ["ticket_id"], unique=False
    )
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "acknowledgement",
                "reply",
                "notification",
                "transactional",
                "test",
                name="outbound_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                "uncertain",
                "suppressed",
                name="outbound_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("thread_message_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("from_addr", sa.String(length=500), nullable=False),
        sa.Column("reply_to", sa.String(length=500), nullable=True),
        sa.Column("to", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("cc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("bcc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("to_key", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column(
            "headers", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "attachments", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("provider_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["thread_message_id"],
            ["messages.id"],
            name=op.f("fk_outbound_messages_thread_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_outbound_messages_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbound_messages_message_id")),
    )
    op.create_index(
        "ix_outbound_messages_kind_to_key",
        "outbound_messages",
        ["kind", "to_key", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_outbound_messages_provider_id"), "outbound_messages", ["provider_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbound_messages_status"), "outbound_messages", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_outbound_messages_thread_message_id"),
        "outbound_messages",
        ["thread_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_outbound_messages_ticket_id"), "outbound_messages", ["ticket_id"], unique=False
    )
    op.create_table(
        "bounce_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_mail_id", sa.Integer(), nullable=False),
        sa.Column("original_message_id", sa.String(length=998), nullable=True),
        sa.Column("outbound_message_id", sa.Integer(), nullable=True),
        sa.Column(
            "recipients", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_message_id"],
            ["outbound_messages.id"],
            name=op.f("fk_bounce_records_outbound_message_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"], ["raw_mails.id"], name=op.f("fk_bounce_records_raw_mail_id_raw_mails")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_records")),
    )
    op.create_index(
        op.f("ix_bounce_records_original_message_id"),
        "bounce_records",
        ["original_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_bounce_records_outbound_message_id"),
        "bounce_records",
        ["outbound_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_bounce_records_raw_mail_id"), "bounce_records", ["raw_mail_id"], unique=False
    )
    op.create_table(
        "complaint_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_mail_id", sa.Integer(), nullable=False),
        sa.Column("feedback_type", sa.String(length=64), nullable=False),
        sa.Column("original_message_id", sa.String(length=998), nullable=True),
        sa.Column("outbound_message_id", sa.Integer(), nullable=True),
        sa.Column(
            "recipients", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_message_id"],
            ["outbound_messages.id"],
            name=op.f("fk_complaint_records_outbound_message_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"],
            ["raw_mails.id"],
            name=op.f("fk_complaint_records_raw_mail_id_raw_mails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_records")),
    )
    op.create_index(
        op.f("ix_complaint_records_original_message_id"),
        "complaint_records",
        ["original_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_complaint_records_outbound_message_id"),
        "complaint_records",
        ["outbound_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_complaint_records_raw_mail_id"), "complaint_records", ["raw_mail_id"], unique=False
    )
    op.add_column(
        "committees",
        sa.Column("acknowledge", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("committees", sa.Column("ack_subject", sa.Text(), nullable=True))
    op.add_column("committees", sa.Column("ack_text", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("classification", sa.String(length=32), nullable=True))
    op.add_column(
        "messages",
        sa.Column("sender_verified", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("messages", sa.Column("claimed_sender", sa.String(length=500), nullable=True))


def downgrade():
    op.drop_column("messages", "claimed_sender")
    op.drop_column("messages", "sender_verified")
    op.drop_column("messages", "classification")
    op.drop_column("committees", "ack_text")
    op.drop_column("committees", "ack_subject")
    op.drop_column("committees", "acknowledge")
    op.drop_index(op.f("ix_complaint_records_raw_mail_id"), table_name="complaint_records")
    op.drop_index(op.f("ix_complaint_records_outbound_message_id"), table_name="complaint_records")
    op.drop_index(op.f("ix_complaint_records_original_message_id"), table_name="complaint_records")
    op.drop_table("complaint_records")
    op.drop_index(op.f("ix_bounce_records_raw_mail_id"), table_name="bounce_records")
    op.drop_index(op.f("ix_bounce_records_outbound_message_id"), table_name="bounce_records")
    op.drop_index(op.f("ix_bounce_records_original_message_id"), table_name="bounce_records")
    op.drop_table("bounce_records")
    op.drop_index(op.f("ix_outbound_messages_ticket_id"), table_name="outbound_messages")
    op.drop_index(op.f("ix_outbound_messages_thread_message_id"), table_name="outbound_messages")
    op.drop_index(op.f("ix_outbound_messages_status"), table_name="outbound_messages")
    op.drop_index(op.f("ix_outbound_messages_provider_id"), table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_kind_to_key", table_name="outbound_messages")
    op.drop_table("outbound_messages")
    op.drop_index(op.f("ix_inbound_receipts_ticket_id"), table_name="inbound_receipts")
    op.drop_index(op.f("ix_inbound_receipts_raw_mail_id"), table_name="inbound_receipts")
    op.drop_index(op.f("ix_inbound_receipts_message_id"), table_name="inbound_receipts")
    op.drop_table("inbound_receipts")
    op.drop_table("ticket_participants")
    op.drop_index(op.f("ix_ticket_links_ticket_id"), table_name="ticket_links")
    op.drop_table("ticket_links")
    op.drop_index(op.f("ix_routing_rules_position"), table_name="routing_rules")
    op.drop_index(op.f("ix_routing_rules_committee_id"), table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index(op.f("ix_quarantined_mails_raw_mail_id"), table_name="quarantined_mails")
    op.drop_index(op.f("ix_quarantined_mails_created_at"), table_name="quarantined_mails")
    op.drop_table("quarantined_mails")
    op.drop_table("mailbox_folders")
    op.drop_table("suppressions")
    op.drop_table("mailboxes")
