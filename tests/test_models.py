"""The data model: constraints and behaviour that hold on both databases."""

from __future__ import annotations

from datetime import UTC

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from helpdesk import committees, contacts, tickets
from helpdesk.errors import ServiceError
from helpdesk.models import AuditEvent, Committee, Contact, Ticket, TicketStatus


def test_contact_email_is_unique_case_insensitively(session):
    first = contacts.get_or_create_contact("Jane.Doe@Example.com", "Jane")
    again = contacts.get_or_create_contact("jane.doe@example.COM")
    assert again.id == first.id
    assert first.email == "Jane.Doe@Example.com"  # shown as first seen
    session.add(Contact(email="JANE.DOE@EXAMPLE.COM", email_key="jane.doe@example.com"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_contact_kinds_accumulate(session):
    c = contacts.get_or_create_contact("speaker@example.com", kinds=("speaker",))
    contacts.get_or_create_contact("SPEAKER@example.com", kinds=("grant_applicant",))
    assert {k.value for k in c.kinds} == {"speaker", "grant_applicant"}


def test_only_one_committee_is_the_triage_queue(session, make_committee):
    first = make_committee(triage=True)
    second = make_committee(triage=True)
    session.flush()
    triage = session.scalars(sa.select(Committee).where(Committee.is_triage)).all()
    assert triage == [second]
    assert committees.triage_committee() == second
    first.is_triage = True
    with pytest.raises(IntegrityError):
        session.flush()


def test_committee_addresses_are_unique_across_committees(session, make_committee):
    make_committee(slug="program", mail_addresses=["Program@Conference.test"])
    with pytest.raises(ServiceError, match="belongs to committee 'program'"):
        make_committee(slug="grants", mail_addresses=["program@conference.test"])
    assert committees.committee_for_address("PROGRAM@conference.test").slug == "program"


def test_ticket_numbers_increase_and_never_repeat(session, make_ticket):
    numbers = [make_ticket().number for _ in range(5)]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 5


def test_timestamps_come_back_timezone_aware(session, make_ticket):
    ticket = make_ticket()
    session.commit()
    session.expire_all()
    reloaded = session.get(Ticket, ticket.id)
    assert reloaded.created_at.tzinfo is not None
    assert reloaded.created_at.utcoffset() == UTC.utcoffset(None)


def test_inbound_mail_reopens_a_solved_ticket(session, make_ticket):
    ticket = make_ticket(status="solved")
    assert ticket.closed_at is not None
    tickets.add_message(ticket.id, "inbound", text="One more thing", from_address="a@b.example")
    assert ticket.status == TicketStatus.OPEN
    assert ticket.closed_at is None


def test_recusing_the_assignee_unassigns_them(session, make_ticket, make_user, make_committee):
    committee = make_committee(visibility="private")
    member = make_user(committees=[committee])
    ticket = make_ticket(committee=committee)
    tickets.assign(ticket.id, member.id)
    tickets.recuse(ticket.id, member.id)
    assert ticket.assignee_id is None
    assert member.id in ticket.recused_user_ids


def test_tickets_cannot_be_assigned_to_agents_who_cannot_see_them(
    session, make_ticket, make_user, make_committee
):
    ticket = make_ticket(committee=make_committee(visibility="members"))
    outsider = make_user()
    with pytest.raises(ServiceError, match="cannot see"):
        tickets.assign(ticket.id, outsider.id)


def test_deleting_a_ticket_keeps_its_audit_trail(session, make_ticket):
    ticket = make_ticket()
    number = ticket.number
    session.delete(ticket)
    session.flush()
    events = session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "ticket.created")
    ).all()
    assert any(e.data.get("number") == number and e.ticket_id is None for e in events)
