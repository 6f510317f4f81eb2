"""An agent's evening in Chromium: queue, ticket, note, reply, assign, close; two agents
on one ticket; the keyboard."""

from __future__ import annotations

import email
import re
from email import policy

import sqlalchemy as sa
from playwright.sync_api import expect

from helpdesk.extensions import db
from helpdesk.inbound.threading import ticket_number_from_message_id
from helpdesk.models import Direction, Message, OutboundMessage, Ticket
from tests.browser.conftest import enhanced, log_in, screenshot


def _outbound_count(live_server) -> int:
    with live_server.app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage))
        db.session.remove()
    return count


def _ticket(live_server, ticket_id: int) -> dict:
    with live_server.app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        values = {
            "status": ticket.status.value,
            "assignee": ticket.assignee.name if ticket.assignee else None,
            "notes": [m.text for m in ticket.messages if m.direction is Direction.NOTE],
        }
        db.session.remove()
    return values


def test_reply_note_assign_and_close_a_ticket(context, live_server, scene, tmp_path):
    world = scene(ticket_count=3)
    ada = world.agents[0]
    ticket = world.tickets[0]
    page = context.new_page()
    log_in(page, live_server, ada.email)
    screenshot(page, "dashboard", tmp_path)

    page.get_by_role("link", name=world.committee.name).click()
    expect(page.get_by_role("heading", name=world.committee.name)).to_be_visible()
    screenshot(page, "queue", tmp_path)
    page.get_by_role("link", name=ticket.subject).click()
    expect(page.get_by_role("heading", name=f"#{ticket.number} {ticket.subject}")).to_be_visible()

    # Assign to me with the keyboard ("a").
    enhanced(page)
    page.locator("body").press("a")
    expect(page.get_by_text(f"assigned to {ada.name}")).to_be_visible()
    enhanced(page)

    # An internal note is never mailed.
    before_files = live_server.outbox_files()
    outbound_before = _outbound_count(live_server)
    page.locator("body").press("n")
    expect(page.get_by_role("textbox", name="Internal note")).to_be_focused()
    page.keyboard.type("Checked the visa list; they are on it.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".message-note")).to_contain_text("Checked the visa list")
    enhanced(page)
    assert live_server.outbox_files() == before_files
    assert _outbound_count(live_server) == outbound_before

    # A reply goes out from the committee, threaded and tagged.
    page.locator("body").press("r")
    expect(page.get_by_role("textbox", name="Reply", exact=True)).to_be_focused()
    page.keyboard.type("Dear Person,\n\nyour **invitation letter** is attached to your profile.")
    page.get_by_label("Cc").fill("colleague@example.org")
    screenshot(page, "ticket", tmp_path)
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("Reply sent.")).to_be_visible()
    new_files = live_server.outbox_files() - before_files
    assert len(new_files) == 1
    mail = email.message_from_bytes(new_files.pop().read_bytes(), policy=policy.default)
    assert mail["From"] == f"{world.committee.name} <{world.committee.slug}@conference.test>"
    assert mail["To"].endswith(f"<person{world.committee.slug.split('-')[1]}-0@example.org>")
    assert mail["Cc"] == "colleague@example.org"
    assert mail["Subject"] == f"[Helpdesk #{ticket.number}] Re: {ticket.subject}"
    inbound = f"<question-{world.committee.slug.split('-')[1]}-0@example.org>"
    assert mail["In-Reply-To"] == inbound
    assert inbound in mail["References"]
    with live_server.app.app_context():
        assert ticket_number_from_message_id(mail["Message-ID"].strip("<>")) == ticket.number
    assert "<strong>invitation letter</strong>" in mail.get_body(("html",)).get_content()
    expect(page.locator(".message-outbound")).to_contain_text("mail sent")
    enhanced(page)

    # Close with the keyboard ("c").
    page.locator("body").press("c")
    expect(page.locator("header .badge.status-closed")).to_be_visible()
    state = _ticket(live_server, ticket.id)
    assert state == {
        "status": "closed",
        "assignee": ada.name,
        "notes": ["Checked the visa list; they are on it."],
    }


def test_a_send_is_held_when_someone_else_changed_the_ticket(browser, live_server, scene, tmp_path):
    world = scene()
    ada, bruno = world.agents
    ticket = world.tickets[0]
    first = browser.new_context(viewport={"width": 1280, "height": 900})
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page_a, page_b = first.new_page(), second.new_page()
        log_in(page_a, live_server, ada.email)
        log_in(page_b, live_server, bruno.email)
        url = f"{live_server.url}/tickets/{ticket.number}"
        page_a.clock.install()  # to run the presence timer on demand
        page_a.goto(url)
        page_b.goto(url)
        # Presence: Bruno's page knows Ada is here.
        expect(page_b.locator("#presence")).to_contain_text(f"Also viewing: {ada.name}")

        page_a.get_by_role("textbox", name="Reply", exact=True).fill(
            "We will get back to you tomorrow."
        )
        page_b.get_by_role("textbox", name="Internal note").fill("I phoned them, it is solved.")
        page_b.get_by_role("button", name="Add note").click()
        expect(page_b.get_by_text("Note added.")).to_be_visible()

        # Ada's page hears of it at its next presence ping, before she sends.
        enhanced(page_a)
        page_a.clock.fast_forward("00:25")
        expect(page_a.locator("#changed-banner")).to_contain_text(
            f"Changed since you opened it: {bruno.name} added a note"
        )
        expect(page_a.locator("#presence")).to_have_text(f"Also viewing: {bruno.name}")

        before = live_server.outbox_files()
        outbound_before = _outbound_count(live_server)
        page_a.get_by_role("button", name="Send reply").click()
        held = page_a.locator("#held")
        expect(held).to_contain_text("Your reply was not sent")
        expect(held).to_contain_text(f"{bruno.name} added a note")
        expect(held).to_contain_text("I phoned them, it is solved.")
        expect(page_a.get_by_role("textbox", name="Reply", exact=True)).to_have_value(
            "We will get back to you tomorrow."
        )
        screenshot(page_a, "held-reply", tmp_path)
        assert live_server.outbox_files() == before
        assert _outbound_count(live_server) == outbound_before

        # The agent read it and sends anyway: now it goes.
        page_a.get_by_role("button", name="Send anyway").click()
        expect(page_a.get_by_text("Reply sent.")).to_be_visible()
        assert len(live_server.outbox_files() - before) == 1
    finally:
        first.close()
        second.close()


def test_the_keyboard_moves_through_a_list_and_shows_its_shortcuts(context, live_server, scene):
    world = scene(ticket_count=3)
    page = context.new_page()
    log_in(page, live_server, world.agents[0].email)
    page.goto(f"{live_server.url}/queues/{world.committee.slug}")
    enhanced(page)
    page.locator("body").press("?")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    page.locator("#shortcuts").press("Escape")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_hidden()
    page.locator("body").press("j")
    page.locator("body").press("j")
    expect(page.locator("tr.table-active")).to_have_count(1)
    page.locator("body").press("x")
    expect(page.locator("tr.table-active input[name=ticket]")).to_be_checked()
    page.locator("body").press("o")
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    number = int(page.url.rsplit("/", 1)[1])
    # j/k on a ticket page follow the queue's order (the middle ticket has both).
    enhanced(page)
    page.locator("body").press("j")
    expect(page).not_to_have_url(re.compile(rf"/tickets/{number}$"))
    enhanced(page)
    page.locator("body").press("k")
    expect(page).to_have_url(re.compile(rf"/tickets/{number}$"))


def test_bulk_assign_and_search_without_javascript(browser, live_server, scene, tmp_path):
    world = scene(ticket_count=3)
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = ctx.new_page()
        log_in(page, live_server, world.agents[1].email)
        page.goto(f"{live_server.url}/queues/{world.committee.slug}")
        for ticket in world.tickets[:2]:
            page.get_by_label(f"Select ticket #{ticket.number}").check()
        page.get_by_label("Assign to").select_option(label="me")
        page.get_by_role("button", name="Assign", exact=True).click()
        expect(page.get_by_text("2 ticket(s) changed.")).to_be_visible()
        for ticket in world.tickets[:2]:
            assert _ticket(live_server, ticket.id)["assignee"] == world.agents[1].name
        assert _ticket(live_server, world.tickets[2].id)["assignee"] is None

        page.get_by_label("Search tickets").fill(world.tickets[2].subject.split()[1])
        page.get_by_label("Search tickets").press("Enter")
        expect(page.get_by_role("link", name=world.tickets[2].subject)).to_be_visible()
        expect(page.locator("[data-ticket-row]")).to_have_count(1)
        screenshot(page, "search", tmp_path)
    finally:
        ctx.close()


def test_a_note_mention_shows_on_the_colleagues_dashboard(context, live_server, scene):
    world = scene()
    ada, bruno = world.agents
    ticket = world.tickets[1]
    page = context.new_page()
    log_in(page, live_server, ada.email)
    page.goto(f"{live_server.url}/tickets/{ticket.number}")
    handle = bruno.email.split("@")[0]  # first names repeat across scenes in open queues
    page.get_by_role("textbox", name="Internal note").fill(f"@{handle} can you take this one?")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_text(f"Notified: {bruno.name}.")).to_be_visible()
    with live_server.app.app_context():
        note = db.session.scalars(
            sa.select(Message).where(Message.ticket_id == ticket.id, Message.direction == "note")
        ).one()
        db.session.remove()
    other = context.browser.new_context()
    try:
        page_b = other.new_page()
        log_in(page_b, live_server, bruno.email)
        mention = page_b.get_by_role("link", name=f"#{ticket.number} {ticket.subject}").first
        expect(mention).to_have_attribute("href", re.compile(rf"#message-{note.id}$"))
    finally:
        other.close()


def test_a_canned_reply_is_inserted_at_the_cursor(context, live_server, scene):
    from helpdesk import canned

    world = scene(agent_count=1, ticket_count=1)
    with live_server.app.app_context():
        canned.create(
            world.committee.id,
            "Greeting",
            "Hello {{ contact.first_name }}, this is {{ agent.name }}.",
        )
        db.session.commit()
        db.session.remove()
    page = context.new_page()
    log_in(page, live_server, world.agents[0].email)
    page.goto(f"{live_server.url}/tickets/{world.tickets[0].number}")
    enhanced(page)
    body = page.get_by_role("textbox", name="Reply", exact=True)
    body.fill("Before. ")
    page.get_by_label("Canned reply").select_option(label="Greeting")
    page.get_by_role("button", name="Insert").click()
    first_name = "Person"  # contacts are named "Person <n>-<i>"
    expect(body).to_have_value(
        re.compile(rf"^Before\. Hello {first_name}, this is {world.agents[0].name}\.$")
    )
    assert page.url.endswith(f"/tickets/{world.tickets[0].number}")  # no reload: in place


def test_a_link_in_a_mail_opens_in_a_new_tab(context, live_server, scene):
    world = scene(agent_count=1, ticket_count=1)
    target = f"{live_server.url}/static/mail-frame.css"
    with live_server.app.app_context():
        message = db.session.scalars(
            sa.select(Message).where(Message.ticket_id == world.tickets[0].id)
        ).one()
        message.html = f'<p>See <a href="{target}">the programme</a>.</p>'
        db.session.commit()
        db.session.remove()
    page = context.new_page()
    log_in(page, live_server, world.agents[0].email)
    page.goto(f"{live_server.url}/tickets/{world.tickets[0].number}")
    page.get_by_text("Formatted mail (HTML)").click()
    with context.expect_page() as opened:
        page.frame_locator("iframe.mail-frame").get_by_role("link", name="the programme").click()
    assert opened.value.url == target
    assert page.url.endswith(f"/tickets/{world.tickets[0].number}")
