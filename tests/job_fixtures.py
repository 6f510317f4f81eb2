"""Jobs used by the job tests; module-level so that RQ workers can import them."""

from __future__ import annotations

from helpdesk import tickets
from helpdesk.jobs import enqueue, job
from helpdesk.models import User


@job("default", timeout=30, retries=0)
def add_note(ticket_id: int, author_id: int, text: str) -> int:
    """Add a note to a ticket; returns the note's id."""
    return tickets.add_note(ticket_id, author_id, text).id


@job("default", timeout=30, retries=0)
def add_note_then_chain(ticket_id: int, author_id: int, text: str) -> None:
    """Add a note and enqueue a second one, to show jobs queued by jobs run after commit."""
    tickets.add_note(ticket_id, author_id, text)
    enqueue(add_note, ticket_id, author_id, text + " (chained)")


@job("default", timeout=30, retries=2, retry_intervals=(0,))
def always_fails(user_id: int) -> None:
    """Touch a row, then fail: the touch must be rolled back every time."""
    from helpdesk.extensions import db

    db.session.get(User, user_id).name = "changed by a failing job"
    raise RuntimeError("this job always fails")
