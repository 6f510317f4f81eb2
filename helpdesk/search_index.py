"""Full-text search over tickets: one document per ticket (subject, contact, message texts).

PostgreSQL matches the stored, generated column ``search_vector``
(``to_tsvector('simple', document)``) through a GIN index; SQLite matches the FTS5 table
``ticket_search_fts`` that triggers keep in step with the documents. The 'simple'
configuration does no stemming: mail arrives in many languages,
and a word typed by an agent should match that word. Each typed word matches as a prefix
and every word must occur somewhere in the ticket.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa

from helpdesk.database import Session
from helpdesk.extensions import db
from helpdesk.models import Contact, Message, Ticket, TicketSearchDocument

log = logging.getLogger(__name__)

# Objects of the index that autogenerate cannot represent (migrations/env.py skips them).
SEARCH_OBJECT_PREFIXES = ("ticket_search_fts", "ix_ticket_search_document_tsv", "search_vector")
# A tsvector holds at most 1 MB; long mails and threads are indexed by their beginning.
MAX_MESSAGE_CHARS = 20_000
MAX_DOCUMENT_CHARS = 400_000
MAX_WORDS = 10

_WORD = re.compile(r"[\w@.+'-]+")
# PostgreSQL only: created by the migration, unknown to the model (SQLite has no such type).
_SEARCH_VECTOR = sa.literal_column("ticket_search.search_vector")


def is_search_object(name: str | None) -> bool:
    """Whether a database object belongs to the full-text index built outside the metadata."""
    return bool(name) and name.startswith(SEARCH_OBJECT_PREFIXES)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def document_for(ticket_id: int) -> str:
    """The searchable text of a ticket, built from its rows."""
    db.session.flush()
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return ""
    parts = [ticket.subject]
    if ticket.contact_id is not None:
        contact = db.session.get(Contact, ticket.contact_id)
        if contact is not None:
            parts += [contact.email, contact.name]
    texts = db.session.scalars(
        sa.select(sa.func.substr(Message.text, 1, MAX_MESSAGE_CHARS))
        .where(Message.ticket_id == ticket_id)
        .order_by(Message.id)
    )
    parts.extend(texts)
    return " ".join(p for p in parts if p and not p.isspace())[:MAX_DOCUMENT_CHARS]


_PENDING = "helpdesk.search_index.pending"
_REBUILD = object()
_NEW = object()


def _pending(session) -> dict[int, list]:
    return session.info.setdefault(_PENDING, {})


def rebuild(ticket_id: int) -> None:
    """Write a ticket's document afresh when the transaction commits (new tickets, merges)."""
    _pending(db.session())[ticket_id] = [_REBUILD]


def start(ticket_id: int, parts: list[str]) -> None:
    """Begin the document of a ticket opened in this transaction with ``parts`` (subject,
    contact); it is written at commit with the texts added since, without reading back."""
    _pending(db.session())[ticket_id] = [_NEW, *(p for p in parts if p and not p.isspace())]


def add_text(ticket_id: int, text: str) -> None:
    """Append a new message's text to a ticket's document when the transaction commits.

    Writing at commit time, once per ticket, spares a new ticket with its first message
    and an acknowledgement three rewrites of its document.
    """
    if text.strip():
        _pending(db.session()).setdefault(ticket_id, []).append(text[:MAX_MESSAGE_CHARS])


def write_pending(session=None) -> None:
    """Write the documents marked in this transaction (called before it commits)."""
    session = session or db.session()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    new_documents = []
    for ticket_id, entries in pending.items():
        if _REBUILD in entries:
            _rebuild_now(session, ticket_id)
        elif entries[0] is _NEW:
            document = " ".join(entries[1:])[:MAX_DOCUMENT_CHARS]
            new_documents.append({"ticket_id": ticket_id, "document": document})
        else:
            _append_now(session, ticket_id, " ".join(entries))
    if new_documents:
        # The tickets a fetched batch opened, in one statement.
        _insert_now(session, new_documents)


@sa.event.listens_for(Session, "before_commit")
def _before_commit(session) -> None:
    write_pending(session)


@sa.event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def _rebuild_now(session, ticket_id: int) -> None:
    document = document_for(ticket_id)
    row = session.get(TicketSearchDocument, ticket_id)
    if row is None:
        session.add(TicketSearchDocument(ticket_id=ticket_id, document=document))
    else:
        row.document = document
    session.flush()


def _insert_now(session, rows: list[dict[str, Any]]) -> None:
    session.flush()
    session.connection().execute(sa.insert(TicketSearchDocument.__table__), rows)


def _append_now(session, ticket_id: int, text: str) -> None:
    session.flush()
    appended = session.execute(
        sa.update(TicketSearchDocument)
        .where(TicketSearchDocument.ticket_id == ticket_id)
        .values(
            document=sa.func.substr(
                TicketSearchDocument.document + " " + text, 1, MAX_DOCUMENT_CHARS
            )
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not appended:
        _rebuild_now(session, ticket_id)
        return
    row = session.identity_map.get(session.identity_key(TicketSearchDocument, (ticket_id,)))
    if row is not None:
        session.expire(row)


def words(query: str) -> list[str]:
    """The words of a search, as the index sees them (at most MAX_WORDS)."""
    found = [w.strip(".'-+") for w in _WORD.findall(query)]
    return [w for w in found if w][:MAX_WORDS]


def _tsquery(terms: list[str]) -> str:
    return " & ".join("'" + t.replace("'", "''").replace("\\", "") + "':*" for t in terms)


def _fts5_query(terms: list[str]) -> str:
    return " AND ".join('"' + t.replace('"', '""') + '"*' for t in terms)


def matching_ticket_ids(query: str) -> sa.Select | None:
    """Ids of tickets whose document has every word of ``query``; None for an empty query.

    No access rule here: callers narrow it with helpdesk.access (queues.list_tickets).
    """
    terms = words(query)
    if not terms:
        return None
    write_pending()  # a search sees what its own transaction wrote
    if _dialect() == "postgresql":
        tsquery = sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), _tsquery(terms))
        return sa.select(TicketSearchDocument.ticket_id).where(_SEARCH_VECTOR.op("@@")(tsquery))
    fts = sa.table("ticket_search_fts", sa.column("rowid"))
    return sa.select(fts.c.rowid).where(
        sa.literal_column("ticket_search_fts").op("MATCH")(_fts5_query(terms))
    )
