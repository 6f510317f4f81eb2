"""CSV import of a list's subscribers (the export is in subscriber_export).

The file needs a header line with an ``email`` column; ``name`` and ``language`` are
known columns and every other column becomes an attribute. Every row that is not
imported is reported with its line number and the reason (invalid address, duplicate
within the file, suppressed, already unsubscribed): nothing is dropped silently. Valid rows
are written a chunk at a time with set-based statements, in the caller's transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    ConsentMethod,
    Contact,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.outbound.audience import MAX_ATTRIBUTE_CHARS, MAX_NAME, clean_language
from helpdesk.outbound.bulk_rows import insert_rows, update_rows
from helpdesk.outbound.suppressions import among, suppressed_among

CHUNK = 1000
KNOWN_COLUMNS = ("email", "name", "language")
# Columns an export writes about the subscription: read back, they are not attributes; a
# status other than subscribed keeps the row out (an export carries unsubscribed people).
SUBSCRIPTION_COLUMNS = (
    "status",
    "consent_at",
    "consent_method",
    "consent_source",
    "confirmed_at",
    "unsubscribed_at",
    "unsubscribe_source",
)


@dataclass(frozen=True)
class CsvRow:
    """One data row of the file, by the line it starts on."""

    line: int
    email: str
    name: str
    language: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class RowProblem:
    """A row that was not imported, and why."""

    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    """What an import did, row by row where a row was refused."""

    source: str
    rows: int = 0
    subscribed: int = 0  # new subscriptions (or pending ones now confirmed)
    already_subscribed: int = 0  # live subscriptions kept as they were (details updated)
    problems: list[RowProblem] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.rows} rows: {self.subscribed} subscribed, {self.already_subscribed} "
            f"already subscribed (details updated), {len(self.problems)} not imported"
        )


def decode(data: bytes) -> str:
    """The file's text (UTF-8, a byte-order mark tolerated); the error names the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ServiceError(f"line {line}: the file is not UTF-8 text", field="file") from None


def parse(text: str) -> tuple[list[str], Iterator[CsvRow | RowProblem]]:
    """The header's columns and the rows (or problems of shape) of a CSV text."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ServiceError("the file is empty; it needs a header line", field="file") from None
    except csv.Error as error:
        raise ServiceError(f"line 1: {error}", field="file") from None
    columns = [c.strip().lower() for c in header]
    if "email" not in columns:
        raise ServiceError(
            "line 1 must be a header naming the columns, with an email column "
            "(email,name,language,...)",
            field="file",
        )
    if any(not c for c in columns):
        raise ServiceError("line 1: a column has no name", field="file")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ServiceError(f"line 1: column {duplicates[0]!r} appears twice", field="file")
    return columns, _rows(reader, columns)


def _rows(reader, columns: list[str]) -> Iterator[CsvRow | RowProblem]:
    index = {name: i for i, name in enumerate(columns)}
    extra = [
        (name, i)
        for name, i in index.items()
        if name not in KNOWN_COLUMNS and name not in SUBSCRIPTION_COLUMNS
    ]
    last_line = reader.line_num
    while True:
        line = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            last_line = reader.line_num
            yield RowProblem(line, "", f"unreadable row: {error}")
            continue
        last_line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # a blank line holds no row
        email = values[index["email"]].strip() if len(values) > index["email"] else ""
        if len(values) > len(columns):
            yield RowProblem(line, email, f"{len(values)} fields but the header has {len(columns)}")
            continue

        def get(name: str, values=values) -> str:
            i = index.get(name)
            return values[i].strip() if i is not None and i < len(values) else ""

        status = get("status").lower()
        if status and status != "subscribed":
            yield RowProblem(line, email, f"status column says {status}")
            continue
        yield CsvRow(
            line=line,
            email=email,
            name=get("name"),
            language=get("language"),
            # An empty cell says nothing: it neither sets nor clears an attribute.
            attributes={
                name: value[:MAX_ATTRIBUTE_CHARS] for name, _ in extra if (value := get(name))
            },
        )


def import_csv(
    list_id: int,
    data: bytes,
    source: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the CSV ``data`` into list ``list_id``; ``source`` names the file.

    Consent is recorded as method ``import`` with source ``FILE:LINE``. The caller
    commits. ``progress`` is called with the number of rows handled since its last call.
    """
    _, rows = parse(decode(data))
    report = ImportReport(source=source)
    seen: dict[str, int] = {}
    chunk: list[tuple[str, CsvRow]] = []
    for item in rows:
        report.rows += 1
        if isinstance(item, RowProblem):
            report.problems.append(item)
            _tick(progress, 1)
            continue
        problem = _check_row(item, seen)
        if problem is not None:
            report.problems.append(problem)
            _tick(progress, 1)
            continue
        chunk.append((addresses.normalize(item.email), item))
        if len(chunk) >= CHUNK:
            _write_chunk(list_id, chunk, source, report)
            _tick(progress, len(chunk))
            chunk = []
    if chunk:
        _write_chunk(list_id, chunk, source, report)
        _tick(progress, len(chunk))
    report.problems.sort(key=lambda p: p.line)
    return report


def _tick(progress: Callable[[int], None] | None, n: int) -> None:
    if progress is not None:
        progress(n)


def _check_row(row: CsvRow, seen: dict[str, int]) -> RowProblem | None:
    if not row.email:
        return RowProblem(row.line, row.email, "invalid address: empty")
    if not addresses.is_valid(row.email):
        return RowProblem(row.line, row.email, "invalid address")
    try:
        clean_language(row.language)
    except ServiceError as error:
        return RowProblem(row.line, row.email, error.message)
    key = addresses.normalize(row.email)
    first = seen.get(key)
    if first is not None:
        return RowProblem(row.line, row.email, f"duplicate of line {first}")
    seen[key] = row.line
    return None


def _write_chunk(
    list_id: int, chunk: list[tuple[str, CsvRow]], source: str, report: ImportReport
) -> None:
    keys = [key for key, _ in chunk]
    suppressed = suppressed_among(keys)
    # Core columns: plain rows, without the ORM's loading machinery.
    subscribers = Subscriber.__table__.c
    existing = {
        row.address_key: row
        for row in db.session.execute(
            sa.select(
                subscribers.id,
                subscribers.address_key,
                subscribers.name,
                subscribers.language,
                subscribers.attributes,
                subscribers.status,
                subscribers.contact_id,
            ).where(among(subscribers.address_key, keys))
        )
    }
    subscriptions_table = Subscription.__table__.c
    subscriptions = {
        subscriber_id: SubscriptionStatus(status)
        for subscriber_id, status in db.session.execute(
            sa.select(subscriptions_table.subscriber_id, subscriptions_table.status).where(
                subscriptions_table.list_id == list_id,
                among(subscriptions_table.subscriber_id, [r.id for r in existing.values()]),
            )
        )
    }
    accepted: list[tuple[str, CsvRow]] = []
    for key, row in chunk:
        reason = suppressed.get(key)
        known = existing.get(key)
        if reason is not None:
            report.problems.append(RowProblem(row.line, row.email, f"suppressed ({reason.value})"))
        elif known is not None and known.status == SubscriberStatus.UNSUBSCRIBED:
            report.problems.append(
                RowProblem(row.line, row.email, "already unsubscribed (from everything)")
            )
        elif known is not None and known.status != SubscriberStatus.ACTIVE:
            report.problems.append(
                RowProblem(row.line, row.email, f"suppressed ({SubscriberStatus(known.status)})")
            )
        elif known is not None and subscriptions.get(known.id) == SubscriptionStatus.UNSUBSCRIBED:
            report.problems.append(
                RowProblem(row.line, row.email, "already unsubscribed from this list")
            )
        else:
            accepted.append((key, row))
    if not accepted:
        return
    now = utcnow()
    # Link subscribers to the helpdesk contacts with the same address.
    contacts = dict(
        db.session.execute(
            sa.select(Contact.email_key, Contact.id).where(
                among(Contact.email_key, [key for key, _ in accepted])
            )
        ).all()
    )
    new = [
        {
            "address_key": key,
            "email": row.email,
            "name": row.name[:MAX_NAME],
            "language": row.language,
            "attributes": row.attributes,
            "status": SubscriberStatus.ACTIVE,
            "contact_id": contacts.get(key),
            "created_at": now,
            "updated_at": now,
        }
        for key, row in accepted
        if key not in existing
    ]
    if new:
        insert_rows(Subscriber.__table__, new, ["address_key"])
    updates = []
    for key, row in accepted:
        known = existing.get(key)
        if known is None:
            continue
        values = {
            "name": row.name[:MAX_NAME] or known.name,
            "language": row.language or known.language,
            "attributes": {**(known.attributes or {}), **row.attributes},
            "contact_id": known.contact_id or contacts.get(key),
        }
        if values != {
            "name": known.name,
            "language": known.language,
            "attributes": known.attributes or {},
            "contact_id": known.contact_id,
        }:
            updates.append({"id": known.id, **values, "updated_at": now})
    if updates:
        update_rows(Subscriber.__table__, updates, ["id"])
    ids = {key: row.id for key, row in existing.items()}
    created = [row["address_key"] for row in new]
    if created:
        ids.update(
            db.session.execute(
                sa.select(Subscriber.address_key, Subscriber.id).where(
                    among(Subscriber.address_key, created)
                )
            ).all()
        )
    inserts, confirms = [], []
    for key, row in accepted:
        subscriber_id = ids[key]
        status = subscriptions.get(subscriber_id)
        consent = {
            "consent_at": now,
            "consent_method": ConsentMethod.IMPORT,
            "consent_source": f"{source}:{row.line}",
            "confirmed_at": now,
        }
        if status is None:
            inserts.append(
                {
                    "list_id": list_id,
                    "subscriber_id": subscriber_id,
                    "status": SubscriptionStatus.SUBSCRIBED,
                    **consent,
                }
            )
        elif status == SubscriptionStatus.PENDING:
            confirms.append(
                {
                    "list_id": list_id,
                    "subscriber_id": subscriber_id,
                    "status": SubscriptionStatus.SUBSCRIBED,
                    **consent,
                }
            )
        else:
            report.already_subscribed += 1
    if inserts:
        insert_rows(Subscription.__table__, inserts, ["list_id", "subscriber_id"])
    update_rows(Subscription.__table__, confirms, ["list_id", "subscriber_id"])
    report.subscribed += len(inserts) + len(confirms)
