"""Contact service: finding or creating the person behind an address."""

from __future__ import annotations

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.extensions import db
from helpdesk.models import Contact, ContactKindName


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
    if contact is None:
        # A concurrent insert of the same address fails the unique key: retried by caller.
        contact = Contact(email=email, email_key=addresses.normalize(email), name=name.strip())
        db.session.add(contact)
    elif name.strip() and not contact.name:
        contact.name = name.strip()
    for kind in kinds:
        contact.add_kind(kind)
    db.session.flush()
    return contact
