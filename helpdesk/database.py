"""Database plumbing: declarative base, column types, the session class, SQLite setup."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, registry

# Named constraints keep migrations reproducible on PostgreSQL and SQLite alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so values coming back from it are naive; they are UTC by
    construction and get their zone back here.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use helpdesk.models.base.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON on both databases; JSONB on PostgreSQL so values can be compared and indexed.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def str_enum(enum_cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A portable enum column: VARCHAR plus a named CHECK constraint, no native type."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class Model(DeclarativeBase):
    """Base class of every table."""

    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime(), dict[str, Any]: JSONType},
    )

    def __repr__(self) -> str:
        ident = sa.inspect(self).identity
        return f"<{type(self).__name__} {ident[0] if ident and len(ident) == 1 else ident}>"


def transaction_cache(session: Any, name: str) -> dict:
    """A dict named ``name`` that lasts as long as the session's current transaction (a
    fresh one after a commit or rollback): for reads a busy transaction repeats, such as
    a committee's settings while a fetched batch opens many tickets in its queue."""
    transaction = session.get_transaction()
    if transaction is None:
        return {}
    cached = session.info.get(name)
    if cached is None or cached[0] is not transaction:
        cached = session.info[name] = (transaction, {})
    return cached[1]


def upsert(session: Any, table: sa.Table | type) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's database (PostgreSQL or SQLite).

    Given a table rather than a mapped class, the statement runs as plain Core, without
    the ORM's per-statement bookkeeping: the hot paths of ingestion use it that way.
    """
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    name = session.get_bind().dialect.name
    return (pg_insert if name == "postgresql" else sqlite_insert)(table)


class Session(FlaskSession):
    """The application's session: honours an explicit bind and runs jobs after commit.

    Flask-SQLAlchemy's session picks an engine per mapper and ignores a bind given to the
    session; a session bound to one connection (the test suite joins each test to an
    outer transaction that way) must use that connection.
    """

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any):
        if bind is None and self.bind is not None:
            return self.bind
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)

    def commit(self) -> None:
        super().commit()
        # Imported here: jobs needs the extensions, which are built on this module.
        from helpdesk.jobs import run_committed_inline_jobs

        run_committed_inline_jobs(self)


def sqlite_engine_setup(engine: sa.Engine) -> None:
    """Make pysqlite behave: real transactions, SAVEPOINTs, foreign keys, WAL.

    pysqlite issues BEGIN lazily and commits on its own around DDL, which breaks
    SAVEPOINTs and transactional DDL; SQLAlchemy's documented remedy is to switch the
    driver to autocommit and emit BEGIN ourselves.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - trivial glue
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # pragma: no cover - trivial glue
        connection.exec_driver_sql("BEGIN")
