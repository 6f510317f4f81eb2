"""Mailing lists: creating and finding them, and what an organiser sees of one.

A list belongs to a committee; who may see and organise it is decided by
:mod:`helpdesk.access`. Besides the list itself this holds the organiser's view of its
audience: subscription counts per status and a searchable page of subscribers. The
subscriptions themselves, with their consent records, are in
:mod:`helpdesk.outbound.audience`, which re-exports these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from helpdesk import audit
from helpdesk.committees import get_committee
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import MailingList, Subscriber, Subscription, SubscriptionStatus

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def add_list(
    slug: str,
    *,
    committee: str,
    name: str,
    double_opt_in: bool = False,
    public: bool = False,
    description: str = "",
    actor_id: int | None = None,
) -> MailingList:
    """Create list ``slug`` owned by committee ``committee`` (a slug)."""
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise ServiceError(
            f"{slug!r} is not a valid slug (lower-case letters, digits and dashes)", field="slug"
        )
    if not name.strip():
        raise ServiceError("a list needs a name", field="name")
    owner = get_committee(committee.strip().lower())
    if db.session.scalar(sa.select(MailingList.id).where(MailingList.slug == slug)) is not None:
        raise ServiceError(f"a list {slug!r} already exists", field="slug")
    mailing_list = MailingList(
        slug=slug,
        name=name.strip()[:200],
        description=description.strip(),
        committee_id=owner.id,
        double_opt_in=double_opt_in,
        public=public,
    )
    db.session.add(mailing_list)
    db.session.flush()
    audit.record(
        "committee.list_added", actor_id=actor_id, committee_id=owner.id, list=slug, name=name
    )
    return mailing_list


def get_list(slug: str) -> MailingList:
    """The list called ``slug``; NotFound otherwise (callers check visibility first)."""
    found = db.session.scalar(sa.select(MailingList).where(MailingList.slug == slug))
    if found is None:
        raise NotFound(f"no list {slug!r}", field="list")
    return found


def list_counts(list_ids: list[int]) -> dict[int, dict[str, int]]:
    """Subscriptions per list and status: ``{list_id: {"subscribed": n, ...}}``."""
    counts: dict[int, dict[str, int]] = {
        i: {s.value: 0 for s in SubscriptionStatus} for i in list_ids
    }
    if not list_ids:
        return counts
    rows = db.session.execute(
        sa.select(Subscription.list_id, Subscription.status, sa.func.count())
        .where(Subscription.list_id.in_(list_ids))
        .group_by(Subscription.list_id, Subscription.status)
    )
    for list_id, status, n in rows:
        counts[list_id][SubscriptionStatus(status).value] = n
    return counts


@dataclass
class SubscriberPage:
    """One page of a list's subscribers."""

    rows: list[tuple[Subscription, Subscriber]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


def search_subscribers(
    list_id: int, query: str = "", status: str = "", *, page: int = 1, per_page: int = 50
) -> SubscriberPage:
    """A list's subscriptions with their subscribers, filtered by address/name and status."""
    stmt = (
        sa.select(Subscription, Subscriber)
        .join(Subscriber, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == list_id)
    )
    query = query.strip()
    if query:
        like = f"%{query.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            sa.or_(Subscriber.address_key.like(like), sa.func.lower(Subscriber.name).like(like))
        )
    if status:
        try:
            stmt = stmt.where(Subscription.status == SubscriptionStatus(status))
        except ValueError:
            raise ServiceError(f"unknown status {status!r}", field="status") from None
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    page = max(page, 1)
    rows = db.session.execute(
        stmt.order_by(Subscriber.address_key).limit(per_page).offset((page - 1) * per_page)
    )
    return SubscriberPage([(s, sub) for s, sub in rows], total, page, per_page)
