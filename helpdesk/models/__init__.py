"""Typed SQLAlchemy models, one module per domain; importing this registers them all."""

from helpdesk.models.audit import AuditEvent
from helpdesk.models.committees import Committee, CommitteeAddress, Membership, MembershipRole
from helpdesk.models.contacts import Contact, ContactKind, ContactKindName, ContactReference
from helpdesk.models.inbound import (
    BounceRecord,
    ComplaintRecord,
    InboundReceipt,
    Mailbox,
    MailboxFolder,
    QuarantinedMail,
    ReceiptOutcome,
    RoutingRule,
)
from helpdesk.models.jobs import JobFailure
from helpdesk.models.mail import Attachment, Direction, Message, RawMail
from helpdesk.models.outbound import (
    OutboundKind,
    OutboundMessage,
    OutboundStatus,
    Suppression,
    SuppressionReason,
)
from helpdesk.models.tickets import (
    Counter,
    Priority,
    Ticket,
    TicketLink,
    TicketParticipant,
    TicketRecusal,
    TicketStatus,
    TicketTag,
)
from helpdesk.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "BounceRecord",
    "Committee",
    "CommitteeAddress",
    "ComplaintRecord",
    "Contact",
    "ContactKind",
    "ContactKindName",
    "ContactReference",
    "Counter",
    "Direction",
    "InboundReceipt",
    "JobFailure",
    "Mailbox",
    "MailboxFolder",
    "Membership",
    "MembershipRole",
    "Message",
    "OutboundKind",
    "OutboundMessage",
    "OutboundStatus",
    "Priority",
    "QuarantinedMail",
    "RawMail",
    "ReceiptOutcome",
    "RoutingRule",
    "Suppression",
    "SuppressionReason",
    "Ticket",
    "TicketLink",
    "TicketParticipant",
    "TicketRecusal",
    "TicketStatus",
    "TicketTag",
    "User",
]
