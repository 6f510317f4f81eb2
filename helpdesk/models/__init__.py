"""Typed SQLAlchemy models, one module per domain; importing this registers them all."""

from helpdesk.models.audit import AuditEvent
from helpdesk.models.committees import Committee, CommitteeAddress, Membership, MembershipRole
from helpdesk.models.contacts import Contact, ContactKind, ContactKindName, ContactReference
from helpdesk.models.jobs import JobFailure
from helpdesk.models.mail import Attachment, Direction, Message, RawMail
from helpdesk.models.tickets import (
    Counter,
    Priority,
    Ticket,
    TicketRecusal,
    TicketStatus,
    TicketTag,
)
from helpdesk.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "Committee",
    "CommitteeAddress",
    "Contact",
    "ContactKind",
    "ContactKindName",
    "ContactReference",
    "Counter",
    "Direction",
    "JobFailure",
    "Membership",
    "MembershipRole",
    "Message",
    "Priority",
    "RawMail",
    "Ticket",
    "TicketRecusal",
    "TicketStatus",
    "TicketTag",
    "User",
]
