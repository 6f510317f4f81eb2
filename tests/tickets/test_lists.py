"""Ticket lists: full-text search, filters, sorting and keyset pages (within access)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from helpdesk import merging, presence, queues, search_index, tickets
from helpdesk.models import ContactKindName, Direction, TicketSearchDocument, TicketViewer
from helpdesk.queues import Sort


def _numbers(page) -> list[int]:
    return [t.number for t in page.tickets]


def test_search_finds_subject_body_and_contact_words_by_prefix(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee()
    agent = make_user(committees=[committee])
    by_subject = make_ticket(committee=committee, subject="Visa invitation letter")
    by_body = make_ticket(committee=committee, body="My wheelchair needs step-free access")
    by_contact = make_ticket(committee=committee, contact_email="quokka.fan@example.org")
    later = make_ticket(committee=committee, body="first mail")
    tickets.add_message(later.id, Direction.INBOUND, text="Also about the Wheelchair ramp")

    def search(q: str) -> set[int]:
        return set(_numbers(queues.list_tickets(agent, query=q)))

    assert search("visa") == {by_subject.number}
    assert search("wheelch") == {by_body.number, later.number}
    assert search("wheelchair ramp") == {later.number}  # every word must occur
    assert search("quokka.fan@example.org") == {by_contact.number}
    assert search("quokka") == {by_contact.number}
    assert search("nothing-like-this") == set()
    assert search("'\"&|!():*<->") == set()  # query syntax is never interpreted


def test_search_never_returns_tickets_the_agent_may_not_read(
    session, make_committee, make_user, make_ticket
):
    private = make_committee(visibility="private")
    outsider = make_user()
    recused = make_user(committees=[private])
    make_ticket(committee=private, subject="Secret incident report", recused=[recused])
    assert queues.list_tickets(outsider, query="incident").tickets == []
    assert queues.list_tickets(recused, query="incident").tickets == []


def test_search_documents_follow_merges(session, make_ticket, make_user):
    target = make_ticket(subject="Target")
    source = make_ticket(subject="Source", body="the flamingo question")
    merging.merge(source.id, target.id)
    agent = make_user()
    assert _numbers(queues.list_tickets(agent, query="flamingo")) == [target.number]
    document = session.get(TicketSearchDocument, target.id).document
    assert document == search_index.document_for(target.id)


def test_a_new_tickets_document_is_the_one_rebuilt_from_its_rows(session, make_ticket, make_user):
    ticket = make_ticket(subject="Grant question", body="Is the travel grant open?")
    tickets.add_message(ticket.id, Direction.OUTBOUND, text="Yes, until May.")
    tickets.add_message(ticket.id, Direction.NOTE, text="   ")
    session.commit()
    document = session.get(TicketSearchDocument, ticket.id).document
    assert document == search_index.document_for(ticket.id)
    assert "Grant question" in document
    assert ticket.contact.email in document
    assert document.endswith("Is the travel grant open? Yes, until May.")


def test_filters_combine(session, make_committee, make_user, make_ticket):
    committee = make_committee()
    agent = make_user(committees=[committee])
    speaker = make_ticket(committee=committee, contact_email="speaker@example.org")
    speaker.contact.add_kind(ContactKindName.SPEAKER)
    tickets.set_tags(speaker.id, ["schedule"])
    tickets.assign(speaker.id, agent.id)
    attendee = make_ticket(committee=committee)
    tickets.set_status(attendee.id, "solved")
    session.flush()

    def listed(**kwargs) -> list[int]:
        return _numbers(queues.list_tickets(agent, committee_id=committee.id, **kwargs))

    assert listed(contact_kind=ContactKindName.SPEAKER) == [speaker.number]
    assert listed(tag="Schedule") == [speaker.number]
    assert listed(assignee_id=agent.id) == [speaker.number]
    assert listed(unassigned=True) == [attendee.number]
    assert listed(statuses=queues.open_statuses()) == [speaker.number]
    today = datetime.now(UTC).date()
    assert set(listed(created_from=today, created_to=today)) == {speaker.number, attendee.number}
    assert listed(created_from=today + timedelta(days=1)) == []
    assert listed(created_to=date(2000, 1, 1)) == []


def test_keyset_pages_cover_every_ticket_once_in_each_order(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee()
    agent = make_user(committees=[committee])
    made = [make_ticket(committee=committee) for _ in range(7)]
    # Several tickets share a timestamp: the id breaks the tie.
    stamp = datetime(2026, 5, 1, 12, tzinfo=UTC)
    for i, ticket in enumerate(made):
        ticket.updated_at = stamp + timedelta(minutes=i // 3)
        ticket.created_at = stamp - timedelta(minutes=i)
    session.flush()
    for sort in Sort:
        seen, cursor = [], None
        while True:
            page = queues.list_tickets(
                agent, committee_id=committee.id, sort=sort, cursor=cursor, limit=3
            )
            seen += _numbers(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(t.number for t in made), sort
        assert len(seen) == len(set(seen))
        column = "updated_at" if sort.value.startswith("updated") else "created_at"
        by_number = {t.number: t for t in made}
        keys = [(getattr(by_number[n], column), by_number[n].id) for n in seen]
        assert keys == sorted(keys, reverse=not sort.ascending), sort


def test_neighbours_follow_the_queue_order(session, make_committee, make_user, make_ticket):
    committee = make_committee()
    agent = make_user(committees=[committee])
    first, second, third = (make_ticket(committee=committee) for _ in range(3))
    stamp = datetime(2026, 5, 1, tzinfo=UTC)
    for i, ticket in enumerate((first, second, third)):
        ticket.updated_at = stamp + timedelta(hours=i)
    session.flush()
    # Newest first: third, second, first.
    assert queues.neighbours(agent, second) == (third.number, first.number)
    assert queues.neighbours(agent, third) == (None, second.number)


def test_presence_in_the_database_lists_other_readers_only(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee(visibility="members")
    alice, bob = make_user(committees=[committee]), make_user(committees=[committee])
    ticket = make_ticket(committee=committee)
    assert presence.seen(ticket.id, alice.id) == []
    assert [u.id for u in presence.seen(ticket.id, bob.id)] == [alice.id]
    # A mark older than the window means nothing.
    session.execute(
        sa.update(TicketViewer)
        .where(TicketViewer.user_id == alice.id)
        .values(seen_at=datetime.now(UTC) - presence.WINDOW - timedelta(seconds=1))
    )
    assert presence.seen(ticket.id, bob.id) == []
    # An agent who lost access is not shown.
    presence.seen(ticket.id, alice.id)
    tickets.recuse(ticket.id, alice.id)
    assert presence.seen(ticket.id, bob.id) == []


def test_presence_in_redis(session, app, make_user, make_ticket, monkeypatch):
    from helpdesk.jobs import redis_connection
    from tests.conftest import REDIS_URL

    monkeypatch.setitem(app.config, "HELPDESK_REDIS_URL", REDIS_URL)
    monkeypatch.delitem(app.extensions, "helpdesk_redis", raising=False)
    alice, bob = make_user(), make_user()
    ticket = make_ticket()
    redis_connection().delete(f"helpdesk:presence:{ticket.id}")
    presence.seen(ticket.id, alice.id)
    assert [u.id for u in presence.seen(ticket.id, bob.id)] == [alice.id]
    assert session.scalar(sa.select(sa.func.count()).select_from(TicketViewer)) == 0
    assert redis_connection().ttl(f"helpdesk:presence:{ticket.id}") > 0
    redis_connection().delete(f"helpdesk:presence:{ticket.id}")
    app.extensions.pop("helpdesk_redis", None)


def test_status_counts_equal_counting_the_visible_tickets(
    session, make_committee, make_user, make_ticket
):
    from helpdesk import access
    from helpdesk.models import Ticket, TicketStatus

    committees = [make_committee(visibility=v) for v in ("open", "members", "private")]
    member = make_user(committees=committees[1:])
    recused = make_user(committees=committees)
    outsider = make_user()
    for i in range(12):
        ticket = make_ticket(
            committee=committees[i % 3],
            recused=[recused] if i % 4 == 0 else [],
            status=("open", "pending", "closed", None)[i % 4],
        )
        if i % 5 == 0:
            tickets.recuse(ticket.id, member.id)
    session.flush()
    for user in (member, recused, outsider):
        expected: dict[int, dict[str, int]] = {}
        for ticket in session.scalars(access.visible_tickets(user)):
            by_status = expected.setdefault(ticket.committee_id, {})
            by_status[ticket.status.value] = by_status.get(ticket.status.value, 0) + 1
        assert queues.status_counts(user) == expected
        assert expected  # every user sees something of the open committee
        open_only = queues.status_counts(user, queues.open_statuses())
        assert all(TicketStatus(s) in queues.open_statuses() for c in open_only.values() for s in c)
    assert session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 12
