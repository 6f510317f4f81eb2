"""Tickets, messages and contacts written with prebuilt statements (the ingester's path)
hold what the ORM service writes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk import contacts, ticket_rows, tickets
from helpdesk.database import transaction_cache
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    AuditEvent,
    Contact,
    Direction,
    Message,
    Ticket,
    TicketSearchDocument,
    TicketStatus,
)


def _audit(ticket_id: int) -> list[tuple[str, dict]]:
    rows = db.session.execute(
        sa.select(AuditEvent.action, AuditEvent.data).where(AuditEvent.ticket_id == ticket_id)
    )
    return [tuple(row) for row in rows]


def test_contact_row_finds_creates_and_names_like_the_service(session):
    first = contacts.contact_row("Jane.Doe@Example.com")
    assert first[1:] == ("Jane.Doe@Example.com", "")
    # Same person in another spelling: found, and the missing name filled in.
    again = contacts.contact_row("jane.doe@example.COM", "  Jane Doe ")
    assert again == (first[0], "Jane.Doe@Example.com", "Jane Doe")
    # A name once known is kept.
    assert contacts.contact_row("JANE.DOE@example.com", "Somebody Else")[2] == "Jane Doe"
    session.expire_all()
    assert contacts.get_or_create_contact("jane.doe@example.com").name == "Jane Doe"
    assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1


def test_contact_row_cuts_a_long_display_name_to_the_column(session):
    found = contacts.contact_row("long@example.org", "Ö" * 500)
    session.commit()
    session.expire_all()
    assert session.get(Contact, found[0]).name == "Ö" * contacts.NAME_LENGTH


def test_contact_row_refuses_what_is_not_an_address(session):
    with pytest.raises(ServiceError):
        contacts.contact_row("not an address")


def test_open_ticket_writes_what_create_ticket_writes(session, make_committee):
    committee = make_committee()
    contact = contacts.contact_row("kim@example.org", "Kim")
    opened = ticket_rows.open_ticket(
        committee.id,
        "  Visa letter  ",
        contact=contact,
        priority="high",
        tags=["Visa", "visa ", "travel"],
    )
    message_id = ticket_rows.insert_message(
        opened.id, Direction.INBOUND, text="I need a visa letter", subject="Visa letter"
    )
    service = tickets.create_ticket(
        committee.id, "Hotel", contact_id=contact[0], priority="high", tags=["travel", "visa"]
    )
    session.commit()
    session.expire_all()

    ticket = session.get(Ticket, opened.id)
    assert (opened.number, opened.subject, opened.committee_id) == (
        ticket.number,
        "Visa letter",
        committee.id,
    )
    assert opened.contact_email == "kim@example.org"
    assert ticket.number < service.number
    for row in (ticket, session.get(Ticket, service.id)):
        assert row.status is TicketStatus.NEW
        assert row.priority.value == "high"
        assert row.contact_id == contact[0]
        assert row.tags == ["travel", "visa"]
        assert row.version == 1
        assert row.created_at == row.updated_at
    assert _audit(opened.id) == [("ticket.created", {"number": opened.number})]
    assert _audit(service.id) == [("ticket.created", {"number": service.number})]
    message = session.get(Message, message_id)
    assert (message.ticket_id, message.direction, message.to_addresses) == (
        opened.id,
        Direction.INBOUND,
        [],
    )
    document = session.get(TicketSearchDocument, opened.id).document
    assert document == "Visa letter kim@example.org Kim I need a visa letter"


def test_opening_a_ticket_in_no_committee_writes_nothing(session):
    with pytest.raises(NotFound):
        ticket_rows.open_ticket(987654, "Lost")
    assert session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0


def test_a_transaction_cache_lasts_one_transaction(session, make_committee):
    committee = make_committee(visibility="members")
    session.commit()
    session.execute(sa.select(1))  # the next transaction begins
    cache = transaction_cache(db.session(), "test.cache")
    cache["x"] = 1
    assert transaction_cache(db.session(), "test.cache") == {"x": 1}
    assert ticket_rows.committee_visibility(committee.id).value == "members"
    committee.visibility = "private"
    session.commit()
    session.execute(sa.select(1))
    assert transaction_cache(db.session(), "test.cache") == {}
    # A committee changed since is read afresh in the next transaction.
    assert ticket_rows.committee_visibility(committee.id).value == "private"
