"""Collisions: a reply loaded before somebody else's change is held, never sent blindly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk import collisions, mentions, replies, tickets
from helpdesk.collisions import Collision, Snapshot
from helpdesk.errors import ServiceError
from helpdesk.models import Direction, OutboundMessage


def test_snapshots_round_trip_and_reject_garbage():
    snapshot = Snapshot(3, 41, 7)
    assert Snapshot.decode(snapshot.encode()) == snapshot
    for garbage in (None, "", "1.2", "a.b.c", "1.2.3.4", "-1.2.3", "9" * 30 + ".1.1"):
        assert Snapshot.decode(garbage) is None


def test_every_change_bumps_the_version(session, make_user, make_ticket):
    agent = make_user()
    ticket = make_ticket()
    seen = [collisions.snapshot_of(ticket.id).version]
    for change in (
        lambda: tickets.assign(ticket.id, agent.id, actor_id=agent.id),
        lambda: tickets.set_status(ticket.id, "pending", actor_id=agent.id),
        lambda: tickets.set_tags(ticket.id, ["visa"], actor_id=agent.id),
        lambda: tickets.add_note(ticket.id, agent.id, "checked"),
        lambda: tickets.add_message(ticket.id, Direction.INBOUND, text="one more thing"),
    ):
        change()
        session.flush()
        seen.append(collisions.snapshot_of(ticket.id).version)
    assert seen == sorted(set(seen))  # strictly increasing


def test_a_reply_after_someone_elses_note_is_held_with_what_changed(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee()
    alice, bob = make_user(committees=[committee]), make_user(name="Bob Builder")
    ticket = make_ticket(committee=committee)
    loaded = collisions.snapshot_of(ticket.id)
    mentions.add_note(ticket.id, bob.id, "I already called them.")
    tickets.set_status(ticket.id, "solved", actor_id=bob.id)
    session.commit()

    with pytest.raises(Collision) as held:
        replies.send_reply(ticket.id, alice.id, "Hello", cc=[], snapshot=loaded)
    session.rollback()
    whats = [(c.who, c.what) for c in held.value.changes]
    assert whats == [
        ("Bob Builder", "added a note"),
        ("Bob Builder", "changed the status to solved"),
    ]
    assert held.value.snapshot == collisions.snapshot_of(ticket.id)
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0

    # Sent again knowingly, with the snapshot the held page carried: it goes through.
    replies.send_reply(ticket.id, alice.id, "Hello", cc=[], snapshot=held.value.snapshot)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1


def test_a_new_mail_from_the_contact_holds_a_reply(session, make_user, make_ticket):
    agent = make_user()
    ticket = make_ticket()
    loaded = collisions.snapshot_of(ticket.id)
    tickets.add_message(
        ticket.id, Direction.INBOUND, text="Never mind, solved it.", from_name="Pat"
    )
    with pytest.raises(Collision) as held:
        replies.send_reply(ticket.id, agent.id, "Here is how", cc=[], snapshot=loaded)
    assert [(c.who, c.what) for c in held.value.changes] == [("Pat", "wrote")]


def test_my_own_changes_in_another_tab_do_not_hold_my_reply(session, make_user, make_ticket):
    agent = make_user()
    ticket = make_ticket()
    loaded = collisions.snapshot_of(ticket.id)
    tickets.set_tags(ticket.id, ["mine"], actor_id=agent.id)
    tickets.add_note(ticket.id, agent.id, "note to self")
    replies.send_reply(ticket.id, agent.id, "Answer", cc=[], snapshot=loaded)


def test_of_two_replies_on_the_same_version_only_the_first_is_sent(session, make_user, make_ticket):
    alice, bob = make_user(), make_user()
    ticket = make_ticket()
    loaded = collisions.snapshot_of(ticket.id)
    replies.send_reply(ticket.id, alice.id, "First", cc=[], snapshot=loaded)
    with pytest.raises(Collision) as held:
        replies.send_reply(ticket.id, bob.id, "Second", cc=[], snapshot=loaded)
    assert "sent a reply" in {c.what for c in held.value.changes}
    outbound = session.scalars(sa.select(OutboundMessage)).all()
    assert [m.text for m in outbound] == ["First"]


def test_a_reply_without_a_snapshot_is_refused(session, make_user, make_ticket):
    ticket = make_ticket()
    with pytest.raises(ServiceError):
        replies.send_reply(ticket.id, make_user().id, "Hi", cc=[], snapshot=None)
