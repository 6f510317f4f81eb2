"""Demo data: the conference's committees, a few agents and realistic tickets."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from helpdesk import agents, canned, committees, contacts, tickets
from helpdesk.extensions import db
from helpdesk.models import (
    CannedReply,
    Committee,
    ContactKindName,
    Direction,
    MailingList,
    MailTemplate,
    Ticket,
    User,
)
from helpdesk.outbound import audience

DOMAIN = "conference.example"


@dataclass(frozen=True)
class DemoCommittee:
    slug: str
    name: str
    visibility: str
    triage: bool = False


COMMITTEES = [
    DemoCommittee("info", "Info desk", "open", triage=True),
    DemoCommittee("program", "Program committee", "open"),
    DemoCommittee("grants", "Grants and financial aid", "members"),
    DemoCommittee("diversity", "Diversity and inclusion", "private"),
    DemoCommittee("steering", "Steering committee", "private"),
    DemoCommittee("sponsoring", "Sponsoring", "open"),
    DemoCommittee("volunteers", "Volunteers", "open"),
]

# (email local part, name, admin, memberships)
AGENTS = [
    ("ada", "Ada Organiser", True, ["steering:lead", "info"]),
    ("bruno", "Bruno Program", False, ["program:lead", "info"]),
    ("chiara", "Chiara Grants", False, ["grants:lead", "diversity"]),
    ("dami", "Dami Diversity", False, ["diversity:lead", "volunteers"]),
    ("emil", "Emil Sponsoring", False, ["sponsoring:lead", "steering", "diversity"]),
]

# (committee, subject, contact email, contact name, kind, body, extra steps)
TICKETS = [
    (
        "info",
        "Invoice with our company address",
        "j.meyer@example.com",
        "Julia Meyer",
        ContactKindName.ATTENDEE,
        "Hello,\n\nI bought two tickets last week (order PYC-20417). Our accounting "
        "department needs an invoice with the company address:\n\nExample GmbH\n"
        "Hauptstrasse 1\n10115 Berlin\n\nCould you send a corrected invoice?\n\nThanks,\nJulia",
        [],
    ),
    (
        "program",
        "Can I move my talk to Thursday?",
        "sam.okafor@example.net",
        "Sam Okafor",
        ContactKindName.SPEAKER,
        'Hi program team,\n\nmy talk "Typing NumPy arrays" is scheduled for Friday morning, '
        "but my flight home leaves Friday at 10:00. Is there any chance to swap with a "
        "Thursday slot?\n\nBest,\nSam",
        ["note:Bruno Program:I asked the Thursday 14:00 speaker whether they would swap."],
    ),
    (
        "grants",
        "Financial aid application: travel from Lagos",
        "amaka@example.org",
        "Amaka Eze",
        ContactKindName.GRANT_APPLICANT,
        "Dear grants committee,\n\nI applied for financial aid (application 77). My visa "
        "appointment is on the 12th; could you send a letter confirming the grant so I can "
        "show it at the embassy?\n\nKind regards,\nAmaka",
        ["status:pending"],
    ),
    (
        "diversity",
        "Report: comment during the sprint",
        "reporter@example.com",
        "",
        ContactKindName.ATTENDEE,
        "I want to report a comment made by one of the organisers during the Sunday sprint. "
        "I would like this to stay confidential.",
        ["recuse:emil"],
    ),
    (
        "sponsoring",
        "Booth size for Gold sponsors",
        "events@example-sponsor.com",
        "Marta Lopez",
        ContactKindName.ATTENDEE,
        "Hi,\n\nwe are a Gold sponsor this year. What is the booth size, and can we bring "
        "our own roll-up banners?\n\nMarta",
        ["reply:Emil Sponsoring:Hi Marta, Gold booths are 3 x 2 m; roll-ups are welcome."],
    ),
    (
        "volunteers",
        "Helping at the registration desk",
        "lena.k@example.de",
        "Lena Krause",
        ContactKindName.ATTENDEE,
        "Hallo! I would love to help at the registration desk on Wednesday morning. "
        "Do I need to sign up somewhere?\n\nLena",
        [],
    ),
    (
        "steering",
        "Venue contract for next year",
        "sales@venue.example",
        "Venue sales team",
        ContactKindName.ATTENDEE,
        "Dear organisers, please find attached the draft contract for next year's dates. "
        "We need your signature by the end of the month.",
        ["assign:ada"],
    ),
]


# (committee, title, body): Markdown with the ticket, contact and agent variables.
CANNED_REPLIES = [
    (
        "info",
        "Invoice corrected",
        "Dear {{ contact.first_name }},\n\nyou will find the corrected invoice in your ticket "
        "account under *Orders*. Reply to this mail if anything is still wrong.\n\n"
        "Best regards,\n{{ agent.first_name }} for the {{ ticket.committee }}",
    ),
    (
        "grants",
        "Visa letter on its way",
        "Dear {{ contact.first_name }},\n\nthe letter confirming your grant is attached to "
        "your application; the embassy can check it with us at any time.\n\n"
        "Good luck with the appointment!\n{{ agent.first_name }}",
    ),
]


def create_demo() -> Iterator[str]:
    """Create what is missing of the demo conference; print the agents' passwords."""
    for spec in COMMITTEES:
        if db.session.scalar(sa.select(Committee.id).where(Committee.slug == spec.slug)) is None:
            committees.add_committee(
                spec.slug,
                spec.name,
                mail_addresses=[f"{spec.slug}@{DOMAIN}"],
                visibility=spec.visibility,
                triage=spec.triage,
            )
    db.session.flush()

    yield f"Demo conference at {DOMAIN}. Log in with one of these agents:"
    for local, name, admin, memberships in AGENTS:
        email = f"{local}@{DOMAIN}"
        password = secrets.token_urlsafe(9)
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            agents.create_agent(
                email,
                name,
                password=password,
                admin=admin,
                committees=[_membership(m) for m in memberships],
            )
        else:
            agents.set_password(user.id, password)
        roles = ", ".join(memberships) + (", site admin" if admin else "")
        yield f"  {email:28} password: {password:14} ({roles})"
    db.session.flush()

    if db.session.scalar(sa.select(sa.func.count()).select_from(CannedReply)) == 0:
        for slug, title, body in CANNED_REPLIES:
            canned.create(committees.get_committee(slug).id, title, body)

    if db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0:
        for spec in TICKETS:
            _create_ticket(*spec)
        yield f"Created {len(TICKETS)} demo tickets."
    if db.session.scalar(sa.select(sa.func.count()).select_from(MailingList)) == 0:
        yield _create_newsletter()
    db.session.commit()


def _create_newsletter() -> str:
    """A list of the program committee with a few subscribers, and a newsletter template."""
    news = audience.add_list("attendee-news", committee="program", name="Attendee news")
    for address, name in NEWS_SUBSCRIBERS:
        audience.add_by_hand(news.id, f"{address}@example.org", name=name, actor_id=None)
    program = committees.get_committee("program")
    # Saved as is: checking it needs HELPDESK_POSTAL_ADDRESS, which launching asks for.
    db.session.add(
        MailTemplate(
            name="schedule-out",
            committee_id=program.id,
            subject="The schedule is out, {{ name }}",
            html=(
                "<h1>The schedule is out</h1><p>Dear {{ name }},</p>"
                "<p>Talks, tutorials and sprints are online. See you soon!</p>"
            ),
        )
    )
    return "Created the list attendee-news and the template schedule-out."


NEWS_SUBSCRIBERS = [("ana.lima", "Ana Lima"), ("kofi", "Kofi Mensah"), ("mei", "Mei Chen")]


def _membership(value: str):
    slug, _, role = value.partition(":")
    return slug, role or "member"


def _agent(local: str) -> User:
    return agents.get_agent(f"{local}@{DOMAIN}")


def _create_ticket(slug, subject, email, name, kind, body, steps) -> None:
    committee = committees.get_committee(slug)
    contact = contacts.get_or_create_contact(email, name, kinds=(kind,))
    ticket = tickets.create_ticket(committee.id, subject, contact_id=contact.id)
    tickets.add_message(
        ticket.id,
        Direction.INBOUND,
        text=body,
        subject=subject,
        from_address=email,
        from_name=name,
        to_addresses=[committee.address_list[0]],
    )
    for step in steps:
        action, _, rest = step.partition(":")
        if action == "note":
            author_name, _, text = rest.partition(":")
            author = db.session.scalar(sa.select(User).where(User.name == author_name))
            tickets.add_note(ticket.id, author.id, text)
        elif action == "reply":
            author_name, _, text = rest.partition(":")
            author = db.session.scalar(sa.select(User).where(User.name == author_name))
            tickets.add_message(
                ticket.id,
                Direction.OUTBOUND,
                text=text,
                subject=f"Re: {subject}",
                from_address=committee.address_list[0],
                from_name=committee.name,
                to_addresses=[email],
                author_id=author.id,
            )
            tickets.set_status(ticket.id, "pending", actor_id=author.id)
        elif action == "status":
            tickets.set_status(ticket.id, rest)
        elif action == "recuse":
            tickets.recuse(ticket.id, _agent(rest).id)
        elif action == "assign":
            tickets.assign(ticket.id, _agent(rest).id)
