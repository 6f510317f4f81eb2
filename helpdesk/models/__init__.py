"""Typed SQLAlchemy models, one module per domain; importing this registers them all."""

from helpdesk.models.audience import (
    ConsentMethod,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.models.audit import AuditEvent
from helpdesk.models.campaigns import (
    Campaign,
    CampaignEventCount,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    IdempotencyRecord,
    MailLayout,
    MailTemplate,
    ProviderEvent,
)
from helpdesk.models.canned import CannedReply
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
from helpdesk.models.notifications import Notification, NotificationKind
from helpdesk.models.outbound import (
    OutboundKind,
    OutboundMessage,
    OutboundStatus,
    Suppression,
    SuppressionReason,
)
from helpdesk.models.presence import TicketViewer
from helpdesk.models.search import TicketSearchDocument
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
    "Campaign",
    "CampaignEventCount",
    "CampaignStatus",
    "CannedReply",
    "Committee",
    "CommitteeAddress",
    "ComplaintRecord",
    "ConsentMethod",
    "Contact",
    "ContactKind",
    "ContactKindName",
    "ContactReference",
    "Counter",
    "Delivery",
    "DeliveryStatus",
    "Direction",
    "IdempotencyRecord",
    "InboundReceipt",
    "JobFailure",
    "MailLayout",
    "MailTemplate",
    "Mailbox",
    "MailboxFolder",
    "MailingList",
    "Membership",
    "MembershipRole",
    "Message",
    "Notification",
    "NotificationKind",
    "OutboundKind",
    "OutboundMessage",
    "OutboundStatus",
    "Priority",
    "ProviderEvent",
    "QuarantinedMail",
    "RawMail",
    "ReceiptOutcome",
    "RoutingRule",
    "Subscriber",
    "SubscriberStatus",
    "Subscription",
    "SubscriptionStatus",
    "Suppression",
    "SuppressionReason",
    "Ticket",
    "TicketLink",
    "TicketParticipant",
    "TicketRecusal",
    "TicketSearchDocument",
    "TicketStatus",
    "TicketTag",
    "TicketViewer",
    "User",
]
