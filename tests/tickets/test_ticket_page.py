"""The ticket page as agents see it: thread, mail HTML in sandboxed frames, images,
unverified senders, collisions and forms that work without JavaScript."""

from __future__ import annotations

import re

import sqlalchemy as sa

from helpdesk import collisions, mentions, tickets
from helpdesk.models import Direction, OutboundMessage
from tests.helpers import csrf_token, login


def _page(client, ticket, query: str = ""):
    response = client.get(f"/tickets/{ticket.number}{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_the_thread_marks_directions_quotes_and_unverified_senders(
    client, session, make_user, make_ticket
):
    agent = make_user(name="Ada Agent")
    ticket = make_ticket(body="Yes, that works.\n\nOn Monday, Ada wrote:\n> Does Thursday work?\n")
    tickets.add_message(
        ticket.id,
        Direction.INBOUND,
        text="Please send the money to this account.",
        from_address="group@conference.test",
        from_name="Via the group",
        sender_verified=False,
        claimed_sender="Treasurer <treasurer@example.com>",
    )
    mentions.add_note(ticket.id, agent.id, "Looks like phishing.")
    session.commit()
    login(client, agent)
    text = _page(client, ticket).get_data(as_text=True)

    assert text.count('class="card mb-3 message message-inbound"') == 2
    assert text.count('class="card mb-3 message message-note"') == 1
    assert ">Internal note</span>" in text
    assert "Unverified sender" in text
    assert "claims to be Treasurer &lt;treasurer@example.com&gt;" in text
    # New text first; the quoted history is collapsed, and still on the page.
    new_part, quoted = text.split('<details class="mt-2 quoted">', 1)
    assert "Yes, that works." in new_part
    assert "Does Thursday work?" in quoted


def test_mail_html_is_shown_in_a_sandboxed_frame_with_remote_images_blocked(
    client, session, make_user, make_ticket
):
    agent = make_user()
    ticket = make_ticket()
    message = ticket.messages[0]
    message.html = '<p>Look: <img src="https://tracker.example.com/pixel.gif" alt="pixel"></p>'
    session.commit()
    login(client, agent)

    response = _page(client, ticket)
    text = response.get_data(as_text=True)
    frame = re.search(r"<iframe[^>]*>", text).group(0)
    sandbox = re.search(r'sandbox="([^"]*)"', frame).group(1).split()
    # Links may open a new tab; nothing in the mail may run, or share our origin.
    assert sandbox == ["allow-popups", "allow-popups-to-escape-sandbox"]
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert "tracker.example.com" in srcdoc  # parked, not loaded
    # Jinja escapes the frame's quotes as &#34;.
    assert "data-remote-src=&#34;https://tracker.example.com/pixel.gif" in srcdoc
    assert " src=&#34;https://" not in srcdoc
    policy = response.headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in policy
    assert "script-src 'self'" in policy

    shown = _page(client, ticket, f"?images={message.id}")
    shown_frame = re.search(r'srcdoc="([^"]*)"', shown.get_data(as_text=True)).group(1)
    assert " src=&#34;https://tracker.example.com/pixel.gif" in shown_frame
    assert "img-src 'self' data: https: http:" in shown.headers["Content-Security-Policy"]


def test_a_held_reply_shows_what_changed_and_keeps_the_draft(
    client, session, make_user, make_ticket
):
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    ticket = make_ticket()
    session.commit()
    login(client, alice)
    token = csrf_token(client, f"/tickets/{ticket.number}")
    loaded = collisions.snapshot_of(ticket.id)
    tickets.assign(ticket.id, bob.id, actor_id=bob.id)
    session.commit()

    held = client.post(
        f"/tickets/{ticket.number}/reply",
        data={
            "body": "My draft answer",
            "status": "pending",
            "snapshot": loaded.encode(),
            "csrf_token": token,
        },
    )
    assert held.status_code == 409
    text = held.get_data(as_text=True)
    assert "Your reply was not sent" in text
    assert "Bob</strong> assigned the ticket to Bob" in text
    assert "My draft answer</textarea>" in text
    assert f'value="{collisions.snapshot_of(ticket.id).encode()}"' in text
    assert "Send anyway" in text
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_preview_and_canned_insertion_work_without_javascript(
    client, session, make_committee, make_user, make_ticket
):
    from helpdesk import canned

    committee = make_committee()
    agent = make_user(name="Chiara Grants", committees=[committee])
    ticket = make_ticket(committee=committee)
    row = canned.create(committee.id, "Thanks", "Thanks, {{ contact.first_name }}!")
    session.commit()
    login(client, agent)
    token = csrf_token(client, f"/tickets/{ticket.number}")
    snapshot = collisions.snapshot_of(ticket.id).encode()
    base = {"csrf_token": token, "snapshot": snapshot, "status": "pending"}

    preview = client.post(
        f"/tickets/{ticket.number}/reply", data={**base, "body": "**bold**", "preview": "Preview"}
    )
    assert preview.status_code == 200
    assert "&lt;strong&gt;bold&lt;/strong&gt;" in preview.get_data(as_text=True)  # in srcdoc

    inserted = client.post(
        f"/tickets/{ticket.number}/reply",
        data={**base, "body": "Hello.", "canned": str(row.id), "insert_canned": "Insert"},
    )
    first_name = ticket.contact.name.split()[0]
    assert f"Hello.\n\nThanks, {first_name}!</textarea>" in inserted.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_a_merged_tickets_number_leads_to_the_target(client, session, make_user, make_ticket):
    from helpdesk import merging

    agent = make_user()
    target, source = make_ticket(), make_ticket()
    merging.merge(source.id, target.id, actor_id=agent.id)
    session.commit()
    login(client, agent)
    response = client.get(f"/tickets/{source.number}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tickets/{target.number}"


def test_merging_asks_for_confirmation_first(client, session, make_user, make_ticket):
    agent = make_user()
    target, source = make_ticket(), make_ticket()
    session.commit()
    login(client, agent)
    token = csrf_token(client, f"/tickets/{source.number}")
    asked = client.post(
        f"/tickets/{source.number}/merge", data={"target": target.number, "csrf_token": token}
    )
    assert asked.status_code == 200
    assert f"Merge #{source.number} into #{target.number}?" in asked.get_data(as_text=True)
    session.refresh(source)
    assert source.merged_into_id is None
    done = client.post(
        f"/tickets/{source.number}/merge",
        data={"target": target.number, "confirm": "yes", "csrf_token": token},
    )
    assert done.headers["Location"] == f"/tickets/{target.number}"
    session.refresh(source)
    assert source.merged_into_id == target.id


def test_every_form_on_the_page_carries_a_csrf_token(client, session, make_user, make_ticket):
    agent = make_user()
    ticket = make_ticket()
    session.commit()
    login(client, agent)
    text = _page(client, ticket).get_data(as_text=True)
    forms = re.findall(r'<form[^>]*method="post".*?</form>', text, re.S)
    assert len(forms) >= 9
    for form in forms:
        assert 'name="csrf_token"' in form
    # A post without the token is refused.
    refused = client.post(f"/tickets/{ticket.number}/status", data={"status": "closed"})
    assert refused.status_code == 400


def test_the_presence_ping_names_other_viewers_and_changes_since_loading(
    client, app, session, make_user, make_ticket
):
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    ticket = make_ticket()
    session.commit()
    login(client, alice)
    token = csrf_token(client, f"/tickets/{ticket.number}")
    loaded = collisions.snapshot_of(ticket.id).encode()
    quiet = client.post(
        f"/tickets/{ticket.number}/presence", data={"snapshot": loaded, "csrf_token": token}
    )
    assert quiet.json == {"viewers": [], "changes": []}

    other = app.test_client()
    login(other, bob)
    _page(other, ticket)  # Bob opens the ticket and sets its status
    tickets.set_status(ticket.id, "pending", actor_id=bob.id)
    session.commit()
    busy = client.post(
        f"/tickets/{ticket.number}/presence",
        data={"snapshot": loaded, "csrf_token": token},
        headers={"X-CSRFToken": token},
    )
    assert busy.json == {"viewers": ["Bob"], "changes": ["Bob changed the status to pending"]}
    # The script sends the token as a header only.
    header_only = client.post(
        f"/tickets/{ticket.number}/presence",
        data={"snapshot": loaded},
        headers={"X-CSRFToken": token},
    )
    assert header_only.status_code == 200
    assert client.post(f"/tickets/{ticket.number}/presence").status_code == 400
