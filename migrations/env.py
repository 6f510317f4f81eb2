"""Alembic environment: runs migrations on the app's engine (or a connection given by tests).

Revisions themselves use only ``op`` and ``sa``; this file may look at the app to know
the target metadata for autogenerate.
"""

import logging

import sqlalchemy as sa
from alembic import context
from flask import current_app

from helpdesk.database import UTCDateTime
from helpdesk.search_index import is_search_object

config = context.config
log = logging.getLogger("alembic.env")


def _target_metadata():
    return current_app.extensions["migrate"].db.metadata


def _render_item(type_, obj, autogen_context):
    # Render our column types as plain SQLAlchemy so revisions never import the app.
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _include_object(obj, name, type_, reflected, compare_to):
    # Full-text search objects that autogenerate cannot represent; the revision that adds
    # ticket_search creates them with dialect-specific SQL (an FTS5 table and its shadow
    # tables on SQLite, an expression GIN index on PostgreSQL).
    return not is_search_object(name)


def _skip_empty(context_, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("no changes in schema detected")


def _configure(**kwargs):
    context.configure(
        target_metadata=_target_metadata(),
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
        process_revision_directives=_skip_empty,
        **kwargs,
    )


def run_migrations_offline():
    _configure(
        url=current_app.extensions["migrate"].db.engine.url.render_as_string(hide_password=False),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection):
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    with current_app.extensions["migrate"].db.engine.connect() as connection:
        _run_on(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
