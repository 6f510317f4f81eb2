"""Writing many rows at once: a chunk travels as one JSON parameter that the database expands.

``jsonb_to_recordset`` on PostgreSQL and ``json_each`` on SQLite turn the document into
rows, so a thousand rows cost one statement and one parameter (encoded by the C JSON
encoder) instead of thousands of placeholders to build, send and parse.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from helpdesk.extensions import db


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _json_value(value, sqlite: bool):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        if sqlite:  # the form SQLAlchemy stores: naive UTC, microseconds
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value.isoformat()
    return value


def _rows_source(table: sa.Table, names: list[str], sqlite: bool) -> str:
    """A FROM item named ``x`` with one row per element of the JSON array ``:rows``."""
    if sqlite:
        values = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in names)
        return f"(SELECT {values} FROM json_each(:rows)) AS x"  # noqa: S608
    dialect = db.session.get_bind().dialect
    record = ", ".join(f"{n} {table.c[n].type.compile(dialect=dialect)}" for n in names)
    return f"jsonb_to_recordset(CAST(:rows AS JSONB)) AS x({record})"


def _document(rows: list[dict], sqlite: bool) -> dict[str, str]:
    return {"rows": json.dumps([{k: _json_value(v, sqlite) for k, v in r.items()} for r in rows])}


# Table and column names in these statements come from our own models, never from the file.


def insert_rows(table: sa.Table, rows: list[dict], conflict: list[str]) -> None:
    """Insert ``rows`` (dicts with the same keys), skipping conflicts on ``conflict``.

    The chunk travels as one JSON parameter (the C JSON encoder makes it cheap) that the
    database expands into rows: ``jsonb_to_recordset`` on PostgreSQL, ``json_each`` on
    SQLite. One statement per chunk, no per-row parameter handling.
    """
    if not rows:
        return
    sqlite = not _postgres()
    names = list(rows[0])
    columns = ", ".join(names)
    values = ", ".join(f"x.{name}" for name in names)
    statement = sa.text(
        f"INSERT INTO {table.name} ({columns}) "  # noqa: S608
        f"SELECT {values} FROM {_rows_source(table, names, sqlite)} WHERE true "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    )  # WHERE true: SQLite's rule for an upsert after a SELECT
    db.session.execute(statement, _document(rows, sqlite))


def update_rows(table: sa.Table, rows: list[dict], keys: list[str]) -> None:
    """Update the rows matching each dict's ``keys`` columns with its other values."""
    if not rows:
        return
    sqlite = not _postgres()
    names = list(rows[0])
    assignments = ", ".join(f"{n} = x.{n}" for n in names if n not in keys)
    match = " AND ".join(f"{table.name}.{k} = x.{k}" for k in keys)
    statement = sa.text(
        f"UPDATE {table.name} SET {assignments} "  # noqa: S608
        f"FROM {_rows_source(table, names, sqlite)} WHERE {match}"
    )
    db.session.execute(statement, _document(rows, sqlite))
