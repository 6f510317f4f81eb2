"""How a ticket's thread is shown: each message's parts, ready for the template.

Mail HTML is stored sanitised (Message.html). At display time remote images are parked
(helpdesk.sanitize.block_remote_images) unless the agent asked to see them for that
message, and cid: images point at our signed inline-image route. Text is split into the
new part and the quoted history (helpdesk.inbound.quotes), which the page collapses;
the full text stays in the database and on the page.
"""

from __future__ import annotations

import html as html_entities
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import selectinload

from helpdesk import inline_images
from helpdesk.extensions import db
from helpdesk.inbound.quotes import split_reply
from helpdesk.models import Attachment, Direction, Message, OutboundMessage, Ticket, User
from helpdesk.sanitize import block_remote_images

_CID_SOURCE = re.compile(r'(<img\b[^>]*?\ssrc=")cid:([^"]*)(")', re.IGNORECASE)
_REMOTE_IMAGE = re.compile(r"<img\b[^>]*\sdata-remote-src=", re.IGNORECASE)


@dataclass
class MessageView:
    """One message of the thread as the page shows it."""

    message: Message
    new_text: str
    quoted_text: str
    signature: str
    srcdoc: str | None = None
    has_remote_images: bool = False
    showing_images: bool = False
    outbound_status: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def direction(self) -> str:
        """inbound, outbound or note."""
        return self.message.direction.value


def _content_id(value: str) -> str:
    return value.strip().strip("<>").lower()


def _with_inline_images(html: str, ticket: Ticket, message: Message, user: User) -> str:
    by_cid = {_content_id(a.content_id): a for a in message.attachments if a.content_id}

    def replace(match: re.Match) -> str:
        attachment = by_cid.get(_content_id(html_entities.unescape(match.group(2))))
        if attachment is None or attachment.content_type not in inline_images.SHOWN_TYPES:
            return match.group(1) + match.group(3)
        url = url_for(
            "tickets.inline_image",
            number=ticket.number,
            attachment_id=attachment.id,
            t=inline_images.token_for(user, attachment.id),
        )
        return match.group(1) + html_entities.escape(url) + match.group(3)

    return _CID_SOURCE.sub(replace, html)


def _document(body: str) -> str:
    """A whole document for the iframe: our frame stylesheet, no referrer, and links that
    open in a new tab (the frame itself may not navigate away from our site)."""
    stylesheet = html_entities.escape(url_for("static", filename="mail-frame.css"))
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><base target="_blank">'
        f'<link rel="stylesheet" href="{stylesheet}"></head><body>{body}</body></html>'
    )


def message_view(message: Message, ticket: Ticket, user: User, *, show_images: bool) -> MessageView:
    """The display parts of one message."""
    if message.direction is Direction.INBOUND:
        parts = split_reply(message.text or "")
        new, quoted, signature = parts.new, parts.quoted, parts.signature
        if not new.strip():
            new, quoted, signature = message.text or "", "", ""
    else:
        new, quoted, signature = message.text or "", "", ""
    view = MessageView(
        message,
        new,
        quoted,
        signature,
        attachments=[a for a in message.attachments if not (a.inline and a.content_id)],
    )
    if message.html:
        blocked = block_remote_images(message.html)
        view.has_remote_images = bool(_REMOTE_IMAGE.search(blocked))
        view.showing_images = show_images and view.has_remote_images
        shown = message.html if view.showing_images else blocked
        view.srcdoc = _document(_with_inline_images(shown, ticket, message, user))
    return view


def thread(ticket: Ticket, user: User, *, show_images_for: frozenset[int]) -> list[MessageView]:
    """The ticket's messages, oldest first, with the state of the mail we sent."""
    messages = list(
        db.session.scalars(
            sa.select(Message)
            .where(Message.ticket_id == ticket.id)
            .order_by(Message.created_at, Message.id)
            .options(selectinload(Message.attachments), selectinload(Message.author))
        )
    )
    statuses = dict(
        db.session.execute(
            sa.select(OutboundMessage.thread_message_id, OutboundMessage.status).where(
                OutboundMessage.thread_message_id.in_([m.id for m in messages])
            )
        ).all()
    )
    views = []
    for message in messages:
        view = message_view(message, ticket, user, show_images=message.id in show_images_for)
        status = statuses.get(message.id)
        view.outbound_status = status.value if status is not None else None
        views.append(view)
    return views
