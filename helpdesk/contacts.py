"""Contact service: finding or creating the person behind an address."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.extensions import db
from helpdesk.models import Contact, ContactKindName

NAME_LENGTH = 200


def find_contact(email: str) -> Contact | None:
    """The contact for ``email`` (case-insensitive), if known."""
    return db.session.scalar(
        sa.select(Contact).where(Contact.email_key == addresses.normalize(email))
    )


def get_or_create_contact(
    email: str, name: str = "", *, kinds: tuple[ContactKindName | str, ...] = ()
) -> Contact:
    """The contact for ``email``, created if new; fills in a missing name and adds kinds."""
    email = addresses.require_valid(email)
    contact = find_contact(email)
    name = _clean_name(name)
    if contact is None:
        # A concurrent insert of the same address fails the unique key: retried by caller.
        contact = Contact(email=email, email_key=addresses.normalize(email), name=name)
        db.session.add(contact)
    elif name and not contact.name:
        contact.name = name
    for kind in kinds:
        contact.add_kind(kind)
    db.session.flush()
    return contact


def contact_row(email: str, name: str = "") -> tuple[int, str, str]:
    """(id, email, name) of the contact for ``email``, created if new, a missing name
    filled in: what :func:`get_or_create_contact` does, with prebuilt statements and no
    ORM object, for the busy path of ingestion."""
    email = addresses.require_valid(email)
    key = addresses.normalize(email)
    name = _clean_name(name)
    connection = db.session.connection()
    row = connection.execute(_select_row(), {"key": key}).first()
    if row is None:
        # A concurrent insert of the same address fails the unique key: retried by caller.
        values = {"email": email, "email_key": key, "name": name}
        return connection.execute(_insert_row(), values).scalar_one(), email, name
    found, email, known = row
    if name and not known:
        connection.execute(_name_update(), {"key": key, "name": name})
        known = name
    return found, email, known


def _clean_name(name: str) -> str:
    """A display name as stored: trimmed, and cut to its column."""
    return name.strip()[:NAME_LENGTH]


@cache
def _select_row() -> sa.Select:
    table = Contact.__table__
    return sa.select(table.c.id, table.c.email, table.c.name).where(
        table.c.email_key == sa.bindparam("key")
    )


@cache
def _insert_row() -> sa.Insert:
    table = Contact.__table__
    return table.insert().returning(table.c.id)


@cache
def _name_update() -> sa.Update:
    table = Contact.__table__
    # The SET clause takes the columns named in the parameters (name), and updated_at.
    return table.update().where(table.c.email_key == sa.bindparam("key"))
