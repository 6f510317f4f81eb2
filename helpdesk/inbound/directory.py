"""What the ingester needs to know about committees and routing rules, cached briefly.

Every mail needs the committees' addresses, their Groups' List-IDs, the triage queue and
the routing rules; reading them per mail would cost several queries each. They change
rarely, so each process keeps a copy for a few seconds; changes made in this process
(the admin pages, the CLI) drop the copy at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk.extensions import db
from helpdesk.models import Committee, CommitteeAddress, RoutingRule

TTL_SECONDS = 15.0
_KEY = "helpdesk_directory"


@dataclass(frozen=True)
class Rule:
    """A routing rule as plain data."""

    id: int
    name: str
    conditions: dict[str, Any]
    committee_id: int | None
    tags: tuple[str, ...]
    priority: str | None


@dataclass(frozen=True)
class CommitteeInfo:
    """What the ingester reads of a committee."""

    id: int
    slug: str
    name: str
    visibility: str
    acknowledge: bool
    ack_subject: str | None
    ack_text: str | None
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Directory:
    """Committees by address, our Groups by List-ID, the triage queue, the enabled rules."""

    committees: dict[int, CommitteeInfo] = field(default_factory=dict)
    committee_by_address: dict[str, int] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # List-ID -> group address
    triage_id: int | None = None
    rules: tuple[Rule, ...] = ()


def _load() -> Directory:
    rows = db.session.execute(
        sa.select(CommitteeAddress.address, CommitteeAddress.committee_id).order_by(
            CommitteeAddress.id
        )
    ).all()
    by_address = dict(rows)
    committees = {
        c.id: CommitteeInfo(
            c.id,
            c.slug,
            c.name,
            c.visibility.value,
            c.acknowledge,
            c.ack_subject,
            c.ack_text,
            tuple(address for address, owner in rows if owner == c.id),
        )
        for c in db.session.scalars(sa.select(Committee))
    }
    groups = {}
    for address in by_address:
        local, _, domain = address.partition("@")
        groups[f"{local}.{domain}"] = address
    triage = db.session.scalar(sa.select(Committee.id).where(Committee.is_triage.is_(True)))
    rules = tuple(
        Rule(
            r.id, r.name, dict(r.conditions or {}), r.committee_id, tuple(r.tags or ()), r.priority
        )
        for r in db.session.scalars(
            sa.select(RoutingRule)
            .where(RoutingRule.enabled.is_(True))
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    )
    return Directory(committees, by_address, groups, triage, rules)


def directory() -> Directory:
    """The current directory (reloaded when older than a few seconds)."""
    cached = current_app.extensions.get(_KEY)
    now = time.monotonic()
    if cached is None or now - cached[0] > TTL_SECONDS:
        cached = (now, _load())
        current_app.extensions[_KEY] = cached
    return cached[1]


def invalidate() -> None:
    """Forget the cached directory (after committees, addresses or rules changed)."""
    current_app.extensions.pop(_KEY, None)
