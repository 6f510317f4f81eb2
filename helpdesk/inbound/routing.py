"""Which committee gets a new ticket: ordered rules first, then committee addresses, then triage.

Rules are edited by admins and tried in order; every condition a rule has must hold. A rule
that names a committee decides; rules without one only add tags or a priority and let the
next rules run. Without a deciding rule, every committee whose address the mail was sent to
(To, Cc, Delivered-To, X-Original-To, plus-addressing ignored, or its Group's List-ID) gets
its own ticket; mail addressed to none of them goes to the triage committee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from helpdesk import addresses
from helpdesk.inbound.directory import directory


@dataclass
class RoutingInput:
    """What routing looks at, taken from a parsed mail and its identified sender."""

    recipients: list[str]  # To, Cc, Delivered-To, X-Original-To
    list_id: str | None
    sender: str | None  # verified sender address
    subject: str
    body: str
    # Contact kinds of the sender, looked up only when a rule asks for them.
    kinds_loader: Callable[[], set[str]] = field(default=set, repr=False)

    @cached_property
    def sender_kinds(self) -> set[str]:
        """The sender's contact kinds (speaker, attendee, grant_applicant)."""
        return self.kinds_loader()


@dataclass
class Route:
    """The outcome: committees (in order), tags, priority, and why."""

    committee_ids: list[int]
    tags: list[str] = field(default_factory=list)
    priority: str | None = None
    reasons: list[str] = field(default_factory=list)


def strip_plus(address: str) -> str:
    """``program+visa@pycon.de`` -> ``program@pycon.de`` (lower-cased)."""
    local, _, domain = addresses.normalize(address).rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else addresses.normalize(address)


def list_id_address(list_id: str) -> str | None:
    """A Google Group's address from its List-ID: ``program.pycon.de`` -> ``program@pycon.de``."""
    local, dot, domain = list_id.strip().strip("<>").lower().partition(".")
    return f"{local}@{domain}" if dot and local and "." in domain else None


def _words(values: Iterable[str]) -> list[str]:
    return [v.strip().lower() for v in values if v and v.strip()]


def rule_matches(conditions: dict, data: RoutingInput) -> list[str]:
    """Reasons the conditions hold, or an empty list when one of them does not."""
    reasons: list[str] = []
    checks = {
        "recipient": lambda wanted: sorted(
            {strip_plus(w) for w in wanted} & {strip_plus(r) for r in data.recipients}
        ),
        "list_id": lambda wanted: [w for w in wanted if data.list_id == w.strip("<>")],
        "sender_kind": lambda wanted: sorted(set(wanted) & data.sender_kinds),
        "sender_domain": lambda wanted: [
            w
            for w in wanted
            if data.sender and addresses.normalize(data.sender).endswith("@" + w.lstrip("@"))
        ],
        "subject_keywords": lambda wanted: [w for w in wanted if w in data.subject.lower()],
        "body_keywords": lambda wanted: [w for w in wanted if w in data.body.lower()],
    }
    for name, values in conditions.items():
        if name not in checks:
            return []  # an unknown condition never matches rather than matching everything
        wanted = _words(values if isinstance(values, list) else [values])
        if not wanted:
            continue
        hits = checks[name](wanted)
        if not hits:
            return []
        reasons.append(f"{name} {', '.join(hits)}")
    return reasons


def route(data: RoutingInput, *, addressed_only: bool = False) -> Route:
    """Decide the committees for a new ticket.

    ``addressed_only`` skips the rules and the triage fallback: only committees the mail
    was addressed to (used for replies, which stay with their tickets).
    """
    if addressed_only:
        addressed = _addressed_committees(data)
        return Route([c for c, _ in addressed], reasons=[why for _, why in addressed])
    tags: list[str] = []
    priority: str | None = None
    reasons: list[str] = []
    known = directory()
    for rule in known.rules:
        why = rule_matches(rule.conditions or {}, data)
        if not why or not rule.conditions:
            continue
        tags.extend(t for t in rule.tags if t not in tags)
        priority = rule.priority or priority
        reasons.append(f"rule {rule.name!r}: {'; '.join(why)}")
        if rule.committee_id is not None:
            return Route([rule.committee_id], tags, priority, reasons)

    addressed = _addressed_committees(data)
    if addressed:
        reasons.extend(why for _, why in addressed)
        return Route([c for c, _ in addressed], tags, priority, reasons)
    triage = known.triage_id
    if triage is None:
        raise LookupError("no committee is the triage queue (helpdesk committee add --triage)")
    reasons.append("no committee address matched: triage")
    return Route([triage], tags, priority, reasons)


def _addressed_committees(data: RoutingInput) -> list[tuple[int, str]]:
    wanted: dict[str, str] = {}
    for recipient in data.recipients:
        wanted.setdefault(strip_plus(recipient), f"addressed to {strip_plus(recipient)}")
    if data.list_id and (group := list_id_address(data.list_id)):
        wanted.setdefault(group, f"List-ID {data.list_id}")
    by_address = directory().committee_by_address
    found: list[tuple[int, str]] = []
    for address, why in wanted.items():
        committee_id = by_address.get(address)
        if committee_id is not None and committee_id not in [c for c, _ in found]:
            found.append((committee_id, why))
    return found
