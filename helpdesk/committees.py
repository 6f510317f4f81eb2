"""Committee service: creating committees and managing their members (always audited)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from helpdesk import addresses, audit
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.directory import invalidate as invalidate_directory
from helpdesk.models import Committee, CommitteeAddress, Membership, MembershipRole, User
from helpdesk.models.committees import Visibility

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def get_committee(slug: str) -> Committee:
    """The committee called ``slug``; NotFound otherwise."""
    committee = db.session.scalar(sa.select(Committee).where(Committee.slug == slug))
    if committee is None:
        raise NotFound(f"no committee {slug!r}", field="committee")
    return committee


def triage_committee() -> Committee | None:
    """The committee that receives mail no rule routes elsewhere."""
    return db.session.scalar(sa.select(Committee).where(Committee.is_triage.is_(True)))


def committee_for_address(address: str) -> Committee | None:
    """The committee owning mail address ``address`` (case-insensitive), if any."""
    return db.session.scalar(
        sa.select(Committee)
        .join(CommitteeAddress)
        .where(CommitteeAddress.address == addresses.normalize(address))
    )


def add_committee(
    slug: str,
    name: str,
    *,
    mail_addresses: list[str] | tuple[str, ...] = (),
    visibility: Visibility | str = Visibility.OPEN,
    triage: bool = False,
    actor_id: int | None = None,
) -> Committee:
    """Create a committee. ``triage`` moves the triage role to it from any other."""
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise ServiceError(
            f"{slug!r} is not a valid slug (lower-case letters, digits and dashes)", field="slug"
        )
    if not name.strip():
        raise ServiceError("a committee needs a name", field="name")
    try:
        visibility = Visibility(visibility)
    except ValueError:
        raise ServiceError(
            f"visibility must be one of {', '.join(v.value for v in Visibility)}",
            field="visibility",
        ) from None
    if db.session.scalar(sa.select(Committee.id).where(Committee.slug == slug)) is not None:
        raise ServiceError(f"a committee {slug!r} exists already", field="slug")
    committee = Committee(slug=slug, name=name.strip(), visibility=visibility)
    db.session.add(committee)
    for address in mail_addresses:
        _add_address(committee, address)
    db.session.flush()
    if triage:
        set_triage(committee.id, actor_id=actor_id)
    invalidate_directory()
    audit.record(
        "committee.created",
        actor_id=actor_id,
        committee_id=committee.id,
        slug=slug,
        visibility=visibility.value,
        addresses=committee.address_list,
    )
    return committee


def _add_address(committee: Committee, address: str) -> None:
    address = addresses.normalize(addresses.require_valid(address, field="address"))
    owner = committee_for_address(address)
    if owner is not None and owner is not committee:
        raise ServiceError(f"{address} belongs to committee {owner.slug!r}", field="address")
    if address not in committee.address_list:
        committee.addresses.append(CommitteeAddress(address=address))


def set_triage(committee_id: int, *, actor_id: int | None = None) -> None:
    """Make the committee the (single) triage queue."""
    current = triage_committee()
    if current is not None and current.id == committee_id:
        return
    if current is not None:
        current.is_triage = False
        # The partial unique index allows one triage committee at any moment.
        db.session.flush()
    committee = db.session.get(Committee, committee_id)
    if committee is None:
        raise NotFound("no such committee")
    committee.is_triage = True
    db.session.flush()
    invalidate_directory()
    audit.record("committee.triage_set", actor_id=actor_id, committee_id=committee_id)


def set_membership(
    committee_id: int,
    user_id: int,
    role: MembershipRole | str = MembershipRole.MEMBER,
    *,
    actor_id: int | None = None,
) -> Membership:
    """Add a member to a committee or change their role; audited."""
    role = MembershipRole(role)
    if db.session.get(User, user_id) is None or db.session.get(Committee, committee_id) is None:
        raise NotFound("no such user or committee")
    membership = db.session.get(Membership, {"user_id": user_id, "committee_id": committee_id})
    if membership is None:
        membership = Membership(user_id=user_id, committee_id=committee_id, role=role)
        db.session.add(membership)
        action = "membership.added"
    elif membership.role != role:
        membership.role = role
        action = "membership.role_changed"
    else:
        return membership
    db.session.flush()
    audit.record(
        action,
        actor_id=actor_id,
        committee_id=committee_id,
        subject_user_id=user_id,
        role=role.value,
    )
    return membership


def remove_membership(committee_id: int, user_id: int, *, actor_id: int | None = None) -> None:
    """Remove a member from a committee; audited. Their assigned tickets there are unassigned."""
    from helpdesk.models import Ticket

    membership = db.session.get(Membership, {"user_id": user_id, "committee_id": committee_id})
    if membership is None:
        raise NotFound("not a member")
    db.session.delete(membership)
    committee = db.session.get(Committee, committee_id)
    if committee is not None and committee.visibility != Visibility.OPEN:
        db.session.execute(
            sa.update(Ticket)
            .where(Ticket.committee_id == committee_id, Ticket.assignee_id == user_id)
            .values(assignee_id=None)
        )
    db.session.flush()
    audit.record(
        "membership.removed", actor_id=actor_id, committee_id=committee_id, subject_user_id=user_id
    )


def update_committee(
    committee_id: int,
    *,
    name: str,
    visibility: Visibility | str,
    mail_addresses: list[str],
    acknowledge: bool,
    ack_subject: str | None,
    ack_text: str | None,
    discord_webhook: str | None = None,
    remove_discord_webhook: bool = False,
    actor_id: int | None = None,
) -> Committee:
    """Change a committee's settings; ``discord_webhook`` None keeps the current one.

    Audited without the webhook URL (it holds a secret): only whether it changed.
    """
    from helpdesk import notifications

    committee = db.session.get(Committee, committee_id)
    if committee is None:
        raise NotFound("no such committee")
    if not name.strip():
        raise ServiceError("a committee needs a name", field="name")
    try:
        visibility = Visibility(visibility)
    except ValueError:
        raise ServiceError(
            f"visibility must be one of {', '.join(v.value for v in Visibility)}",
            field="visibility",
        ) from None
    wanted = []
    for address in mail_addresses:
        address = addresses.normalize(addresses.require_valid(address, field="addresses"))
        owner = committee_for_address(address)
        if owner is not None and owner.id != committee.id:
            raise ServiceError(f"{address} belongs to committee {owner.slug!r}", field="addresses")
        if address not in wanted:
            wanted.append(address)
    before = {
        "name": committee.name,
        "visibility": committee.visibility.value,
        "addresses": committee.address_list,
        "acknowledge": committee.acknowledge,
    }
    committee.name = name.strip()[:200]
    committee.visibility = visibility
    committee.acknowledge = acknowledge
    committee.ack_subject = (ack_subject or "").strip() or None
    committee.ack_text = (ack_text or "").strip() or None
    for row in list(committee.addresses):
        if row.address not in wanted:
            committee.addresses.remove(row)
    db.session.flush()
    for address in wanted:
        if address not in committee.address_list:
            committee.addresses.append(CommitteeAddress(address=address))
    webhook_changed = False
    if remove_discord_webhook:
        webhook_changed = committee.discord_webhook_encrypted is not None
        notifications.set_discord_webhook(committee.id, None)
    elif discord_webhook and discord_webhook.strip():
        notifications.set_discord_webhook(committee.id, discord_webhook)
        webhook_changed = True
    db.session.flush()
    invalidate_directory()
    after = {
        "name": committee.name,
        "visibility": committee.visibility.value,
        "addresses": committee.address_list,
        "acknowledge": committee.acknowledge,
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    audit.record(
        "committee.updated",
        actor_id=actor_id,
        committee_id=committee.id,
        changes=changes,
        discord_webhook_changed=webhook_changed,
    )
    return committee
