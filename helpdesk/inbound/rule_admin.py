"""Managing routing rules (ordered) and trying a mail against them, for the admin pages.

Every change is audited and drops the ingester's cached directory, so the next mail is
routed by the new rules. "Test a mail" runs the real pipeline steps (parse, classify,
identify the sender, route) on pasted headers or a raw mail and writes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa

from helpdesk import audit
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.directory import invalidate
from helpdesk.models import Committee, Priority, RoutingRule

CONDITIONS = (
    "recipient",
    "list_id",
    "sender_kind",
    "sender_domain",
    "subject_keywords",
    "body_keywords",
)
MAX_TEST_MAIL_BYTES = 2 * 1024 * 1024


def ordered_rules() -> list[RoutingRule]:
    """Every rule in the order routing tries them."""
    return list(
        db.session.scalars(sa.select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    )


def _clean(
    name: str, conditions: dict[str, list[str]], committee_id: int | None, priority: str | None
) -> tuple[str, dict[str, list[str]], str | None]:
    if not name.strip():
        raise ServiceError("a rule needs a name", field="name")
    cleaned: dict[str, list[str]] = {}
    for key, values in conditions.items():
        if key not in CONDITIONS:
            raise ServiceError(f"unknown condition {key!r}", field=key)
        words = [v.strip() for v in values if v.strip()]
        if words:
            cleaned[key] = words
    if not cleaned:
        raise ServiceError("a rule needs at least one condition", field="conditions")
    if committee_id is not None and db.session.get(Committee, committee_id) is None:
        raise ServiceError("no such committee", field="committee")
    priority = (priority or "").strip() or None
    if priority is not None and priority not in {p.value for p in Priority}:
        raise ServiceError(
            f"priority must be one of {', '.join(p.value for p in Priority)}", field="priority"
        )
    return name.strip()[:200], cleaned, priority


def save_rule(
    rule_id: int | None,
    *,
    name: str,
    conditions: dict[str, list[str]],
    committee_id: int | None,
    tags: list[str],
    priority: str | None,
    enabled: bool,
    actor_id: int | None = None,
) -> RoutingRule:
    """Create a rule (last in order) or change one."""
    name, conditions, priority = _clean(name, conditions, committee_id, priority)
    if rule_id is None:
        last = db.session.scalar(sa.select(sa.func.max(RoutingRule.position))) or 0
        rule = RoutingRule(position=last + 1)
        db.session.add(rule)
        action = "routing_rule.created"
    else:
        rule = db.session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("no such rule")
        action = "routing_rule.updated"
    rule.name = name
    rule.conditions = conditions
    rule.committee_id = committee_id
    rule.tags = [t.strip().lower() for t in tags if t.strip()]
    rule.priority = priority
    rule.enabled = enabled
    db.session.flush()
    invalidate()
    audit.record(action, actor_id=actor_id, rule_id=rule.id, name=name, conditions=conditions)
    return rule


def move_rule(rule_id: int, offset: int, *, actor_id: int | None = None) -> None:
    """Move a rule up (-1) or down (+1) in the order; positions are renumbered 1..n."""
    rules = ordered_rules()
    index = next((i for i, r in enumerate(rules) if r.id == rule_id), None)
    if index is None:
        raise NotFound("no such rule")
    target = min(max(index + offset, 0), len(rules) - 1)
    rule = rules.pop(index)
    rules.insert(target, rule)
    for position, each in enumerate(rules, start=1):
        each.position = position
    db.session.flush()
    invalidate()
    audit.record("routing_rule.moved", actor_id=actor_id, rule_id=rule_id, position=target + 1)


def delete_rule(rule_id: int, *, actor_id: int | None = None) -> None:
    """Delete a rule."""
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("no such rule")
    audit.record(
        "routing_rule.deleted",
        actor_id=actor_id,
        rule_id=rule_id,
        name=rule.name,
        conditions=rule.conditions,
    )
    db.session.delete(rule)
    db.session.flush()
    invalidate()


@dataclass
class RouteOutcome:
    """What the pipeline would do with a mail."""

    classification: str
    sender: str | None
    sender_verified: bool
    continues: list[int] = field(default_factory=list)
    committees: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    priority: str | None = None
    error: str | None = None


def route_mail(text: str) -> RouteOutcome:
    """Route pasted headers or a whole raw mail as the ingester would; writes nothing."""
    from helpdesk.inbound.facts import mail_facts
    from helpdesk.inbound.ingest import Stage
    from helpdesk.inbound.routing import route
    from helpdesk.inbound.threading import find_thread

    raw = text.replace("\r\n", "\n").encode("utf-8", "surrogateescape")
    if len(raw) > MAX_TEST_MAIL_BYTES:
        raise ServiceError("the mail is larger than 2 MB", field="mail")
    if b"\n\n" not in raw:
        raw = raw.rstrip(b"\n") + b"\n\n"  # headers only: an empty body

    try:
        facts = mail_facts(raw, hashlib.sha256(raw).hexdigest(), Stage())
        outcome = RouteOutcome(
            classification=facts.classification.kind.value,
            sender=facts.sender.address,
            sender_verified=facts.sender.verified,
        )
        match = find_thread(
            in_reply_to=facts.mail.in_reply_to,
            references=facts.mail.references,
            subject=facts.mail.subject,
            sender=facts.sender_address,
        )
        outcome.continues = [t.number for t in match.tickets]
        decision = route(facts.routing_input())
    except Exception as error:  # the answer to the test is what went wrong
        return RouteOutcome("error", None, False, error=str(error) or type(error).__name__)
    finally:
        db.session.rollback()
    outcome.committees = [db.session.get(Committee, c).name for c in decision.committee_ids]
    outcome.reasons = decision.reasons
    outcome.tags = decision.tags
    outcome.priority = decision.priority
    return outcome
