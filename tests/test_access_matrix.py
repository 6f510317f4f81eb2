"""The access matrix: every ticket-reading route and the API, for every kind of agent,
on open, members-only and private committees.

Allowed exactly where helpdesk.access says; a private committee does not exist for
outsiders (not in lists, counts, search, API or error pages); a forbidden ticket
answers 404 exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from helpdesk import canned, inline_images
from helpdesk.agents import issue_api_token
from helpdesk.extensions import db
from helpdesk.models import Attachment, OutboundMessage, Ticket
from helpdesk.storage import attachment_store
from tests.helpers import csrf_token, login, without_csrf

VISIBILITIES = ("open", "members", "private")
PERSONAS = ("member", "non-member", "recused member", "admin non-member")

# Routes the matrix below exercises; a new reading route must be added here and there.
COVERED_RULES = {
    "/",
    "/queues/",
    "/queues/<slug>",
    "/search",
    "/tickets/<int:number>",
    "/tickets/<int:number>/attachments/<int:attachment_id>",
    "/tickets/<int:number>/inline/<int:attachment_id>",
    "/tickets/<int:number>/canned/<int:canned_id>",
    "/api/v1/tickets",
    "/api/v1/tickets/<int:number>",
}
NOT_TICKET_READING = {"/login", "/logout", "/static/<path:filename>"}
# Campaign pages follow the committee's membership; tests/outbound/test_campaign_pages.py.
CAMPAIGN_READING = {"/outbound/campaigns", "/outbound/campaigns/<int:campaign_id>"}
CAMPAIGN_ACTIONS = {
    "/outbound/campaigns",
    "/outbound/campaigns/<int:campaign_id>/<action>",
    "/outbound/campaigns/<int:campaign_id>/test",
    "/outbound/campaigns/<int:campaign_id>/schedule",
}
# Every action on a ticket; test_actions_on_unreadable_tickets_are_not_found posts to each.
COVERED_ACTIONS = {
    "/tickets/<int:number>/reply": {"body": "Hello", "status": "pending"},
    "/tickets/<int:number>/note": {"text": "A note @somebody"},
    "/tickets/<int:number>/assign": {"assignee": "me"},
    "/tickets/<int:number>/status": {"status": "closed"},
    "/tickets/<int:number>/tags": {"tags": "leaked"},
    "/tickets/<int:number>/move": {"committee": "open-queue"},
    "/tickets/<int:number>/merge": {"target": "1", "confirm": "yes"},
    "/tickets/<int:number>/presence": {},
}
NOT_TICKET_ACTIONS = {"/login", "/logout", "/tickets/bulk"}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
    b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe"
    b"\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)


def may_read_ticket(persona: str, visibility: str) -> bool:
    """The rules, stated independently of the code under test."""
    if persona == "member":
        return True
    if persona == "recused member":
        return False
    return visibility == "open"  # non-members, admins included


def may_open_queue(persona: str, visibility: str) -> bool:
    """Queues are per committee; recusal hides tickets, not the member's queue."""
    return persona in ("member", "recused member") or visibility == "open"


def knows_committee(persona: str, visibility: str) -> bool:
    """Whether the committee's name may appear anywhere the persona looks."""
    return visibility != "private" or persona in ("member", "recused member")


@dataclass
class World:
    committees: dict
    tickets: dict
    attachments: dict
    users: dict
    tokens: dict
    inline_images: dict
    canned: dict


@pytest.fixture
def world(session, make_committee, make_user, make_ticket) -> World:
    committees = {
        v: make_committee(slug=f"{v}-queue", name=f"Zeta {v.title()} Committee", visibility=v)
        for v in VISIBILITIES
    }
    member = make_user(committees=list(committees.values()))
    recused = make_user(committees=list(committees.values()))
    users = {
        "member": member,
        "recused member": recused,
        "non-member": make_user(),
        "admin non-member": make_user(admin=True),
    }
    tickets = {
        v: make_ticket(
            committee=c,
            subject=f"Subject {v} quokka",
            body=f"Please help with findme{v} thanks",
            recused=[recused],
            attachment=f"%PDF-1.4 {v}".encode(),
        )
        for v, c in committees.items()
    }
    attachments = {v: t.messages[0].attachments[0].id for v, t in tickets.items()}
    tokens = {p: issue_api_token(u.id) for p, u in users.items()}
    inline_images = {v: _add_inline_image(t) for v, t in tickets.items()}
    replies = {
        v: canned.create(c.id, f"Greeting {v}", f"Hello from {v} #{{{{ ticket.number }}}}").id
        for v, c in committees.items()
    }
    session.commit()
    return World(committees, tickets, attachments, users, tokens, inline_images, replies)


def _add_inline_image(ticket) -> int:
    """An inline image referenced from the first message's HTML as cid:logo."""
    message = ticket.messages[0]
    sha = attachment_store().put(PNG)
    image = Attachment(
        sha256=sha,
        filename="logo.png",
        content_type="image/png",
        size=len(PNG),
        storage_key=attachment_store().key_for(sha),
        content_id="<logo@example.com>",
        inline=True,
    )
    message.attachments.append(image)
    message.html = '<p>Hello <img src="cid:logo@example.com" alt="logo"></p>'
    db.session.flush()
    return image.id


def test_the_matrix_covers_every_reading_route(app):
    rules = {r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}
    rules = {r for r in rules if not r.startswith("/bootstrap/")}
    assert rules - NOT_TICKET_READING - CAMPAIGN_READING == COVERED_RULES


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_web_pages_follow_the_rules(client, world, persona, visibility):
    ticket = world.tickets[visibility]
    committee = world.committees[visibility]
    allowed = may_read_ticket(persona, visibility)
    login(client, world.users[persona])
    pages = []

    page = client.get(f"/tickets/{ticket.number}")
    assert page.status_code == (200 if allowed else 404)
    pages.append(page)

    download = client.get(f"/tickets/{ticket.number}/attachments/{world.attachments[visibility]}")
    assert download.status_code == (200 if allowed else 404)
    if allowed:
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.data == f"%PDF-1.4 {visibility}".encode()
    download.close()
    pages.append(download)

    queue = client.get(f"/queues/{committee.slug}?status=all")
    assert queue.status_code == (200 if may_open_queue(persona, visibility) else 404)
    pages.append(queue)

    filtered = client.get(f"/queues/?status=all&committee={committee.slug}")
    assert filtered.status_code == (200 if may_open_queue(persona, visibility) else 404)
    pages.append(filtered)

    for path in (
        "/queues/?status=all",
        f"/search?q=findme{visibility}",
        f"/search?q=quokka&committee={committee.slug}"
        if may_open_queue(persona, visibility)
        else "/search?q=quokka",
        "/",
    ):
        response = client.get(path)
        assert response.status_code == 200
        pages.append(response)
    for response in pages[2:]:
        assert (ticket.subject in response.get_data(as_text=True)) == allowed

    dashboard = pages[-1].get_data(as_text=True)
    assert (committee.name in dashboard) == knows_committee(persona, visibility)
    if not knows_committee(persona, visibility):
        for response in pages:
            text = response.get_data(as_text=True)
            assert committee.name not in text
            assert committee.slug not in text


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_dashboard_counts_only_readable_tickets(client, world, persona, visibility):
    committee = world.committees[visibility]
    login(client, world.users[persona])
    text = client.get("/").get_data(as_text=True)
    if not may_open_queue(persona, visibility):
        assert f'href="/queues/{committee.slug}"' not in text
        return
    row = text.split(f'href="/queues/{committee.slug}"', 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    new_count = int(cells[0])
    assert new_count == (1 if may_read_ticket(persona, visibility) else 0)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_follows_the_rules(client, world, persona, visibility):
    ticket = world.tickets[visibility]
    committee = world.committees[visibility]
    allowed = may_read_ticket(persona, visibility)
    headers = {"Authorization": f"Bearer {world.tokens[persona]}"}

    listing = client.get("/api/v1/tickets", headers=headers)
    assert listing.status_code == 200
    numbers = {t["number"] for t in listing.json["tickets"]}
    assert (ticket.number in numbers) == allowed

    detail = client.get(f"/api/v1/tickets/{ticket.number}", headers=headers)
    assert detail.status_code == (200 if allowed else 404)
    if allowed:
        assert detail.json["messages"][0]["attachments"][0]["id"] == world.attachments[visibility]

    by_committee = client.get(f"/api/v1/tickets?committee={committee.slug}", headers=headers)
    assert by_committee.status_code == (200 if may_open_queue(persona, visibility) else 404)

    if not knows_committee(persona, visibility):
        for response in (listing, detail, by_committee):
            text = response.get_data(as_text=True)
            assert committee.slug not in text
            assert committee.name not in text


@pytest.mark.parametrize("persona", ["non-member", "admin non-member", "recused member"])
def test_a_forbidden_private_ticket_looks_exactly_like_a_missing_one(client, world, persona):
    hidden = world.tickets["private"]
    missing_number = max(t.number for t in world.tickets.values()) + 1000
    login(client, world.users[persona])

    forbidden = client.get(f"/tickets/{hidden.number}")
    missing = client.get(f"/tickets/{missing_number}")
    assert forbidden.status_code == missing.status_code == 404
    assert without_csrf(forbidden.get_data(as_text=True)) == without_csrf(
        missing.get_data(as_text=True)
    )
    attachment = world.attachments["private"]
    assert client.get(f"/tickets/{hidden.number}/attachments/{attachment}").status_code == 404

    headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
    api_forbidden = client.get(f"/api/v1/tickets/{hidden.number}", headers=headers)
    api_missing = client.get(f"/api/v1/tickets/{missing_number}", headers=headers)
    assert api_forbidden.status_code == api_missing.status_code == 404
    assert api_forbidden.json == api_missing.json


def test_a_recused_member_still_sees_the_committees_other_tickets(
    client, world, make_ticket, session
):
    other = make_ticket(committee=world.committees["private"], subject="Unrelated budget question")
    session.commit()
    login(client, world.users["recused member"])
    assert client.get(f"/tickets/{other.number}").status_code == 200
    queue = client.get("/queues/private-queue?status=all").get_data(as_text=True)
    assert other.subject in queue
    assert world.tickets["private"].subject not in queue


def test_anonymous_visitors_see_nothing(client, world):
    for path in ("/", "/queues/", "/search?q=quokka", f"/tickets/{world.tickets['open'].number}"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    assert client.get("/api/v1/tickets").status_code == 401


def test_deactivated_agents_lose_access_at_once(client, world, session):
    from helpdesk.agents import set_active

    member = world.users["member"]
    login(client, member)
    assert client.get(f"/tickets/{world.tickets['open'].number}").status_code == 200
    set_active(member.id, False)
    session.commit()
    assert client.get(f"/tickets/{world.tickets['open'].number}").status_code == 302
    headers = {"Authorization": f"Bearer {world.tokens['member']}"}
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_inline_images_and_canned_replies_follow_the_rules(client, world, persona, visibility):
    ticket = world.tickets[visibility]
    user = world.users[persona]
    allowed = may_read_ticket(persona, visibility)
    image = world.inline_images[visibility]

    # A valid signature for this agent is not enough: access is asked again.
    token = inline_images.token_for(user, image)
    response = client.get(f"/tickets/{ticket.number}/inline/{image}?t={token}")
    assert response.status_code == (200 if allowed else 404)
    if allowed:
        assert response.data == PNG
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    response.close()
    # Signed for another image, forged, or missing: never served.
    other_image = world.inline_images["open" if visibility != "open" else "members"]
    for bad in (inline_images.token_for(user, other_image), token + "x", ""):
        response = client.get(f"/tickets/{ticket.number}/inline/{image}?t={bad}")
        assert response.status_code == 404
        response.close()

    login(client, user)
    page = client.get(f"/tickets/{ticket.number}")
    if allowed:
        srcdoc = page.get_data(as_text=True)
        assert f"/tickets/{ticket.number}/inline/{image}?t=" in srcdoc
    answer = client.get(f"/tickets/{ticket.number}/canned/{world.canned[visibility]}")
    assert answer.status_code == (200 if allowed else 404)
    if allowed:
        assert answer.json == {"text": f"Hello from {visibility} #{ticket.number}"}
    # Another committee's canned reply is not found through this ticket.
    foreign = world.canned["open" if visibility != "open" else "members"]
    assert client.get(f"/tickets/{ticket.number}/canned/{foreign}").status_code == 404


def test_every_action_is_in_the_matrix(app):
    rules = {r.rule for r in app.url_map.iter_rules() if "POST" in (r.methods or ())}
    assert rules - NOT_TICKET_ACTIONS - CAMPAIGN_ACTIONS == set(COVERED_ACTIONS)


@pytest.mark.parametrize(
    ("persona", "visibility"),
    [(p, v) for p in PERSONAS for v in VISIBILITIES if not may_read_ticket(p, v)],
)
def test_actions_on_unreadable_tickets_are_not_found(client, world, session, persona, visibility):
    ticket = world.tickets[visibility]
    login(client, world.users[persona])
    token = csrf_token(client, "/")
    version = ticket.version
    missing = client.post("/tickets/999999/note", data={"text": "x", "csrf_token": token})
    for rule, form in COVERED_ACTIONS.items():
        data = {**form, "csrf_token": token}
        if rule.endswith("/merge"):
            data["target"] = str(world.tickets["open"].number)
        response = client.post(rule.replace("<int:number>", str(ticket.number)), data=data)
        assert response.status_code == 404, rule
        assert without_csrf(response.get_data(as_text=True)) == without_csrf(
            missing.get_data(as_text=True)
        )
    # Merging a readable ticket into an unreadable one is refused too.
    if may_read_ticket(persona, "open"):
        response = client.post(
            f"/tickets/{world.tickets['open'].number}/merge",
            data={"target": str(ticket.number), "confirm": "yes", "csrf_token": token},
        )
        assert response.status_code == 404
    bulk = client.post(
        "/tickets/bulk",
        data={
            "ticket": [str(ticket.number)],
            "action": "status",
            "status": "closed",
            "csrf_token": token,
        },
    )
    assert bulk.status_code == 404
    session.expire_all()
    refreshed = session.get(Ticket, ticket.id)
    assert refreshed.version == version
    assert refreshed.status.value == "new"
    assert refreshed.committee_id == world.committees[visibility].id
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_actions_on_readable_tickets_are_carried_out(client, world, session, visibility):
    ticket = world.tickets[visibility]
    login(client, world.users["member"])
    token = csrf_token(client, f"/tickets/{ticket.number}")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    snapshot = page.split('name="snapshot" type="hidden" value="', 1)[1].split('"', 1)[0]
    expected = {
        "/reply": 302,
        "/note": 302,
        "/assign": 302,
        "/status": 302,
        "/tags": 302,
        "/presence": 200,
    }
    for rule, form in COVERED_ACTIONS.items():
        suffix = rule.rsplit("/", 1)[1]
        if suffix in ("move", "merge"):
            continue
        data = {**form, "csrf_token": token, "snapshot": snapshot}
        response = client.post(rule.replace("<int:number>", str(ticket.number)), data=data)
        assert response.status_code == expected["/" + suffix], (
            rule,
            response.get_data(as_text=True),
        )
    bulk = client.post(
        "/tickets/bulk",
        data={
            "ticket": [str(ticket.number)],
            "action": "tag",
            "tag": "bulk",
            "next": "/queues/",
            "csrf_token": token,
        },
    )
    assert bulk.status_code == 302
    assert bulk.headers["Location"] == "/queues/"
    session.expire_all()
    refreshed = session.get(Ticket, ticket.id)
    assert refreshed.status.value == "closed"
    assert refreshed.tags == ["bulk", "leaked"]
    assert refreshed.assignee_id == world.users["member"].id
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1


def test_the_contacts_other_tickets_never_show_unreadable_ones(
    app, client, world, session, make_ticket
):
    shared = world.tickets["open"].contact.email
    hidden = make_ticket(
        committee=world.committees["private"],
        subject="Private matter of the same person",
        contact_email=shared,
    )
    visible = make_ticket(
        committee=world.committees["open"], subject="Another open question", contact_email=shared
    )
    session.commit()
    login(client, world.users["non-member"])
    text = client.get(f"/tickets/{world.tickets['open'].number}").get_data(as_text=True)
    assert visible.subject in text
    assert hidden.subject not in text
    member_client = app.test_client()
    login(member_client, world.users["member"])
    text = member_client.get(f"/tickets/{world.tickets['open'].number}").get_data(as_text=True)
    assert hidden.subject in text
