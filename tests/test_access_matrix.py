"""The access matrix: every ticket-reading route and the API, for every kind of agent,
on open, members-only and private committees.

Allowed exactly where helpdesk.access says; a private committee does not exist for
outsiders (not in lists, counts, search, API or error pages); a forbidden ticket
answers 404 exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from helpdesk.agents import issue_api_token
from tests.helpers import login, without_csrf

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
    "/api/v1/tickets",
    "/api/v1/tickets/<int:number>",
}
NOT_TICKET_READING = {"/login", "/logout", "/static/<path:filename>"}


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
    session.commit()
    return World(committees, tickets, attachments, users, tokens)


def test_the_matrix_covers_every_reading_route(app):
    rules = {r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}
    rules = {r for r in rules if not r.startswith("/bootstrap/")}
    assert rules - NOT_TICKET_READING == COVERED_RULES


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

    for path in ("/queues/?status=all", f"/search?q=findme{visibility}", "/"):
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
