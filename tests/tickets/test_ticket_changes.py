"""Mentions, moves, merges, bulk actions and canned replies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk import access, bulk, canned, mentions, merging, tickets
from helpdesk.errors import NotFound, ServiceError
from helpdesk.inbound.threading import find_thread, make_message_id
from helpdesk.models import AuditEvent, Notification, TicketLink, TicketStatus

# -- mentions ---------------------------------------------------------------------------


def test_mention_names_are_found_but_not_inside_addresses():
    text = "Hi @ada and @Bruno.Program, cc @emil@conference.example. Mail bob@example.com. @ada"
    assert mentions.mentioned_names(text) == ["ada", "bruno.program", "emil@conference.example"]


def test_a_mention_notifies_only_readers_of_the_ticket(
    session, make_committee, make_user, make_ticket
):
    private = make_committee(visibility="private")
    author = make_user(committees=[private])
    colleague = make_user("chiara@conference.test", "Chiara Grants", committees=[private])
    make_user("dami@conference.test", "Dami Diversity")
    recused = make_user("emil@conference.test", "Emil Sponsoring", committees=[private])
    ticket = make_ticket(committee=private, recused=[recused])

    result = mentions.add_note(ticket.id, author.id, "@chiara @dami @emil @nobody please look")
    assert [u.id for u in result.notified] == [colleague.id]
    assert result.unknown == ["dami", "emil", "nobody"]
    rows = session.scalars(sa.select(Notification)).all()
    assert [(n.user_id, n.ticket_id, n.message_id) for n in rows] == [
        (colleague.id, ticket.id, result.note.id)
    ]
    assert [n.id for n in mentions.unread(colleague)] == [rows[0].id]
    # Access is checked again when the notification is shown.
    tickets.recuse(ticket.id, colleague.id)
    assert mentions.unread(colleague) == []


def test_opening_the_ticket_marks_its_mentions_read(session, make_user, make_ticket):
    ticket = make_ticket()
    author, reader = make_user(), make_user("lee@conference.test", "Lee Reader")
    mentions.add_note(ticket.id, author.id, "@lee fyi")
    assert len(mentions.unread(reader)) == 1
    assert mentions.mark_read(reader.id, ticket.id) == 1
    assert mentions.unread(reader) == []


def test_an_ambiguous_first_name_notifies_nobody(session, make_user, make_ticket):
    ticket = make_ticket()
    make_user("sam.a@conference.test", "Sam A")
    make_user("sam.b@conference.test", "Sam B")
    result = mentions.add_note(ticket.id, make_user().id, "@sam?")
    assert result.notified == []
    assert result.unknown == ["sam"]


# -- moving -----------------------------------------------------------------------------


def test_a_moved_ticket_leaves_the_old_queue_for_non_members(
    session, make_committee, make_user, make_ticket
):
    info = make_committee(visibility="open")
    diversity = make_committee(visibility="private", name="Diversity")
    member = make_user(committees=[diversity])
    triager = make_user(committees=[info])
    ticket = make_ticket(committee=info)
    tickets.assign(ticket.id, triager.id)

    tickets.move(ticket.id, diversity.id, actor_id=triager.id)
    assert access.visible_ticket(triager, ticket.number) is None
    assert access.visible_ticket(member, ticket.number) is not None
    assert ticket.assignee_id is None  # the triager may not read it any more
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "ticket.moved")).one()
    assert event.data == {"from_committee_id": info.id, "to_committee_id": diversity.id}


# -- merging ----------------------------------------------------------------------------


def test_merging_moves_messages_closes_and_links_the_source(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee()
    agent = make_user(committees=[committee])
    recused = make_user(committees=[committee])
    target = make_ticket(committee=committee, contact_email="one@example.org")
    source = make_ticket(committee=committee, contact_email="two@example.org", recused=[recused])
    tickets.set_tags(source.id, ["visa"])
    source_message_ids = [m.id for m in source.messages]

    merging.merge(source.id, target.id, actor_id=agent.id)
    session.refresh(target)
    session.refresh(source)
    assert {m.id for m in target.messages} >= set(source_message_ids)
    assert source.messages == []
    assert source.status is TicketStatus.CLOSED
    assert source.merged_into_id == target.id
    assert "visa" in target.tags
    assert recused.id in target.recused_user_ids  # the source's recusals follow its messages
    assert "two@example.org" in {p.address for p in target.participants}
    links = {
        (link.ticket_id, link.linked_number, link.kind)
        for link in session.scalars(sa.select(TicketLink))
    }
    assert links == {
        (target.id, source.number, "merged_from"),
        (source.id, target.number, "merged_into"),
    }
    assert merging.final_ticket(source).id == target.id


def test_a_reply_to_a_merged_tickets_mail_threads_to_the_target(session, make_ticket):
    target, source = make_ticket(), make_ticket()
    merging.merge(source.id, target.id)
    match = find_thread(
        in_reply_to=[make_message_id(source.number)], references=[], subject="", sender=None
    )
    assert [t.id for t in match.tickets] == [target.id]


def test_merging_refuses_loops_and_repeats(session, make_ticket):
    a, b, c = make_ticket(), make_ticket(), make_ticket()
    with pytest.raises(ServiceError):
        merging.merge(a.id, a.id)
    merging.merge(a.id, b.id)
    with pytest.raises(ServiceError):
        merging.merge(a.id, c.id)
    with pytest.raises(ServiceError):
        merging.merge(c.id, a.id)


# -- bulk -------------------------------------------------------------------------------


def test_bulk_actions_change_every_chosen_ticket(session, make_committee, make_user, make_ticket):
    committee, other = make_committee(), make_committee()
    agent = make_user(committees=[committee])
    chosen = [make_ticket(committee=committee) for _ in range(3)]
    numbers = [t.number for t in chosen]

    assert bulk.apply(agent.id, numbers, "assign", "me") == 3
    assert bulk.apply(agent.id, numbers, "assign", "me") == 0
    assert bulk.apply(agent.id, numbers, "status", "solved") == 3
    assert bulk.apply(agent.id, numbers, "tag", "Visa") == 3
    assert bulk.apply(agent.id, numbers[:1], "untag", "visa") == 1
    assert bulk.apply(agent.id, numbers, "move", other.slug) == 3
    for ticket in chosen:
        session.refresh(ticket)
        assert (ticket.assignee_id, ticket.status, ticket.committee_id) == (
            agent.id,
            TicketStatus.SOLVED,
            other.id,
        )
    assert [t.tags for t in chosen] == [[], ["visa"], ["visa"]]


def test_bulk_refuses_the_lot_when_one_ticket_is_not_readable(
    session, make_committee, make_user, make_ticket
):
    mine, private = make_committee(), make_committee(visibility="private")
    agent = make_user(committees=[mine])
    readable, hidden = make_ticket(committee=mine), make_ticket(committee=private)
    with pytest.raises(NotFound):
        bulk.apply(agent.id, [readable.number, hidden.number], "status", "closed")
    with pytest.raises(ServiceError):
        bulk.apply(agent.id, [readable.number], "move", private.slug)  # unknown to the agent
    with pytest.raises(ServiceError):
        bulk.apply(agent.id, [readable.number], "explode", "")
    stranger = make_user()
    with pytest.raises(ServiceError):
        bulk.apply(agent.id, [hidden.number], "assign", str(stranger.id))


# -- canned replies ---------------------------------------------------------------------


def test_canned_replies_render_with_plain_ticket_contact_and_agent_values(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee(name="Grants")
    agent = make_user(name="Chiara Grants", committees=[committee])
    ticket = make_ticket(committee=committee, contact_email="amaka@example.org")
    ticket.contact.name = "Amaka Eze"
    row = canned.create(
        committee.id,
        "Visa letter",
        "Dear {{ contact.first_name }}, about #{{ ticket.number }} ({{ ticket.committee }}): "
        "{{ agent.first_name }}",
        actor_id=agent.id,
    )
    text = canned.render_for_ticket(row.id, ticket.id, agent.id)
    assert text == f"Dear Amaka, about #{ticket.number} (Grants): Chiara"
    assert [c.title for c in canned.for_committee(committee.id)] == ["Visa letter"]


def test_canned_replies_cannot_reach_into_the_database_or_python(session, make_committee):
    committee = make_committee()
    for body in (
        "{{ ticket.__class__.__mro__ }}",
        "{{ agent.password_hash }}",
        "{{ contact.email.__class__.__base__.__subclasses__() }}",
        "{% for x in range(10**9) %}{% endfor %}{{ undefined_variable }}",
    ):
        with pytest.raises(ServiceError):
            canned.create(committee.id, f"bad {len(body)}", body)


def test_a_canned_reply_of_another_committee_is_not_found(session, make_committee, make_ticket):
    mine, theirs = make_committee(), make_committee()
    row = canned.create(theirs.id, "Theirs", "text")
    ticket = make_ticket(committee=mine)
    with pytest.raises(NotFound):
        canned.render_for_ticket(row.id, ticket.id, None)
