"""Accepting a transactional mail sent through the API: idempotency, the write, the commit.

The OutboundMessage row is written and committed before its delivery job is queued. An
``Idempotency-Key`` stores the first answer; the same key and body get that answer again,
and two concurrent requests with one key send one mail, because the key's record and the
message commit together under a unique constraint.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from helpdesk.extensions import db
from helpdesk.models import IdempotencyRecord, OutboundKind
from helpdesk.outbound.api_messages import (
    MAX_KEY_CHARS,
    MessageRequest,
    RequestProblem,
    parse_request,
)
from helpdesk.outbound.transactional import message_columns, queue_message_columns
from helpdesk.storage import attachment_store

SQLITE_ATTEMPTS = 8


def create_message(user_id: int, request: MessageRequest) -> int:
    """Write the message and queue its delivery for after the commit; return its id."""
    from helpdesk.inbound.threading import make_message_id

    store = attachment_store()
    stored = [
        {
            "sha256": store.put(data),
            "filename": filename,
            "content_type": content_type,
            "size": len(data),
        }
        for filename, content_type, data in request.attachments
    ]
    return queue_message_columns(
        message_columns(
            OutboundKind.TRANSACTIONAL,
            from_addr=request.from_addr,
            to=request.to,
            cc=request.cc,
            reply_to=request.reply_to,
            subject=request.subject,
            text=request.text,
            html=request.html,
            message_id=make_message_id(),
            attachments=stored,
            api_user_id=user_id,
        )
    )


@dataclass
class Answer:
    """What the API answers: a status, a JSON body, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


# The statements run on every request that carries a key: built once, on the table
# rather than the mapped class (the ORM's handling of a statement costs more than the
# statement).
_records = IdempotencyRecord.__table__


@cache
def _record_query() -> sa.Select:
    return sa.select(_records.c.request_hash, _records.c.status_code, _records.c.response).where(
        _records.c.token_id == sa.bindparam("token_id"), _records.c.key == sa.bindparam("key")
    )


@cache
def _store_statement() -> sa.Insert:
    return _records.insert()


def _replay(token_id: int, key: str, request_hash: str) -> Answer | None:
    """The first answer given for this key, or None if the key is new."""
    record = db.session.execute(_record_query(), {"token_id": token_id, "key": key}).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise RequestProblem(
            422, "Idempotency-Key", "was already used with a different request body"
        )
    return Answer(record.status_code, dict(record.response), replayed=True)


def accept_message(token_id: int, user_id: int, raw: bytes, key: str | None) -> Answer:
    """Validate, write and commit one API message (or replay the key's first answer).

    SQLite refuses a write from a transaction whose snapshot another writer has moved
    past ("database is locked"); the request then starts over, and finds the first
    request's record if it had the same key.
    """
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    for attempt in range(SQLITE_ATTEMPTS):
        try:
            return _accept_once(token_id, user_id, raw, key)
        except OperationalError:
            if not sqlite or attempt == SQLITE_ATTEMPTS - 1:
                raise
            db.session.rollback()
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def _accept_once(token_id: int, user_id: int, raw: bytes, key: str | None) -> Answer:
    request_hash = hashlib.sha256(raw).hexdigest()
    if key is not None:
        key = key.strip()
        if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
            raise RequestProblem(400, "Idempotency-Key", f"must be 1-{MAX_KEY_CHARS} characters")
        if (replayed := _replay(token_id, key, request_hash)) is not None:
            return replayed
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestProblem(400, "body", f"is not JSON: {error}") from None
    request = parse_request(body)
    outbound_id = create_message(user_id, request)
    answer = Answer(202, {"id": outbound_id, "status": "queued"})
    try:
        if key is not None:
            db.session.execute(
                _store_statement(),
                {
                    "token_id": token_id,
                    "key": key,
                    "request_hash": request_hash,
                    "status_code": answer.status,
                    "response": answer.body,
                    "outbound_message_id": outbound_id,
                },
            )
        db.session.commit()
    except IntegrityError:
        # Another request with this key committed first; its message is the one sent.
        db.session.rollback()
        if key is None or (replayed := _replay(token_id, key, request_hash)) is None:
            raise
        return replayed
    return answer
