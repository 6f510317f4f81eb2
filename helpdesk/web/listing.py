"""Reading a ticket list's filters from the query string."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from helpdesk import access, queues
from helpdesk.extensions import db
from helpdesk.models import ContactKindName, Membership, TicketStatus, User
from helpdesk.queues import Sort

STATUS_CHOICES = [
    ("open", "Open (new, open, pending)"),
    ("new", "New"),
    ("pending", "Pending"),
    ("solved", "Solved"),
    ("closed", "Closed"),
    ("all", "Any status"),
]
SORT_CHOICES = [
    (Sort.UPDATED.value, "Latest activity"),
    (Sort.UPDATED_ASC.value, "Waiting longest"),
    (Sort.CREATED.value, "Newest"),
    (Sort.CREATED_ASC.value, "Oldest"),
]
# The query-string keys a list understands, kept on pagination and filter links.
KEYS = ("status", "assignee", "tag", "kind", "committee", "from", "to", "q", "sort")


@dataclass
class ListQuery:
    """A list's filters: arguments for queues.list_tickets and the values to show."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _date(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2026-05-31") from None


def parse(args: MultiDict, user: User, *, default_status: str = "open") -> ListQuery:
    """The filters in ``args``; a malformed value is a 400, an unknown committee a 404."""
    values = {key: args.get(key, "").strip()[:200] for key in KEYS}
    values["status"] = values["status"] or default_status
    kwargs: dict[str, Any] = {}
    status = values["status"]
    if status == "open":
        kwargs["statuses"] = queues.open_statuses()
    elif status != "all":
        try:
            kwargs["statuses"] = (TicketStatus(status),)
        except ValueError:
            raise BadRequest("unknown status") from None
    assignee = values["assignee"]
    if assignee == "me":
        kwargs["assignee_id"] = user.id
    elif assignee == "none":
        kwargs["unassigned"] = True
    elif assignee.isdigit():
        kwargs["assignee_id"] = int(assignee)
    elif assignee:
        raise BadRequest("unknown assignee")
    if values["tag"]:
        kwargs["tag"] = values["tag"]
    if values["kind"]:
        try:
            kwargs["contact_kind"] = ContactKindName(values["kind"])
        except ValueError:
            raise BadRequest("unknown contact kind") from None
    kwargs["created_from"] = _date(values["from"], "from")
    kwargs["created_to"] = _date(values["to"], "to")
    if values["q"]:
        kwargs["query"] = values["q"]
    try:
        kwargs["sort"] = Sort(values["sort"] or Sort.UPDATED.value)
    except ValueError:
        raise BadRequest("unknown sort order") from None
    return ListQuery(kwargs, values)


def colleagues(user: User) -> list[User]:
    """Active agents in committees whose queues ``user`` may open (assignee filter choices)."""
    members = sa.select(Membership.user_id).where(
        Membership.committee_id.in_(access.readable_committee_ids(user))
    )
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.active.is_(True), sa.or_(User.id.in_(members), User.id == user.id))
            .order_by(User.name)
        )
    )


def link_args(values: dict[str, str], **changes: str | None) -> dict[str, str]:
    """Query-string arguments for a link that keeps the current filters."""
    merged = {k: v for k, v in values.items() if v}
    for key, value in changes.items():
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    return merged
