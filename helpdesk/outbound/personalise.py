"""Personalised bulk mail: one Jinja render per recipient, one backend batch per shape.

Each recipient's mail is rendered in full (their name, address, links), then their own
values are replaced by substitution tags. Recipients whose mails then look alike share
one backend batch (one SendGrid request of up to 1,000 personalizations), and the
provider puts each value back, so every copy is exactly what was rendered for them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

from flask import current_app
from markupsafe import escape

from helpdesk.html_text import html_to_text
from helpdesk.outbound import templates, tokens
from helpdesk.outbound import unsubscribe as unsubscribe_links
from helpdesk.outbound.backends.substitution import substitute
from helpdesk.outbound.templates import MailContent, Sources, TemplateProblem


@dataclass
class CampaignInfo:
    """What rendering needs of a campaign."""

    id: int
    list_id: int
    list_name: str
    name: str
    sources: Sources
    from_addr: str
    reply_to: str | None


@dataclass
class Group:
    """Recipients whose mail differs only by substitution tags: one backend batch."""

    subject: str
    html: str
    text: str | None
    members: list[tuple[int, dict[str, str], dict[str, str], str]] = field(default_factory=list)
    # The first member's real HTML and values, to derive the text from when it is empty.
    sample_html: str = ""
    sample_values: dict[str, str] = field(default_factory=dict)
    finished: tuple[str, str] | None = None


def tag(kind: str, name: str) -> str:
    """The substitution tag of a value in the HTML (h) or the text and subject (t)."""
    return f"[%{kind}-{name}%]"


_TAG_NAMES = ("unsubscribe_url", "preferences_url", "email", "name")
_TAG_TEXTS = tuple(tag(kind, name) for kind in "ht" for name in _TAG_NAMES)
_LONGEST_TAG = max(len(t) for t in _TAG_TEXTS)


def safe_value(value: str) -> bool:
    """A value whose replacement provably round-trips: it cannot meet a tag's text."""
    if "[%" in value or "%]" in value:
        return False
    return len(value) > _LONGEST_TAG or not any(value in t for t in _TAG_TEXTS)


def skeleton(
    mail: MailContent, values: dict[str, str]
) -> tuple[str, str, str, dict[str, str]] | None:
    """The mail with this recipient's values replaced by tags, and the substitutions.

    Values are replaced longest first. When no value can meet a tag's own text (no
    "[%" or "%]" in it, not part of a tag name) replacing and substituting back is exact
    by construction; otherwise the round trip is checked. None when it does not hold (a
    tag-like text in the mail, say): that recipient then gets a batch of its own.
    """
    if "[%" in mail.html or "[%" in mail.text or "[%" in mail.subject:
        return None
    html, text, subject = mail.html, mail.text, mail.subject
    subs: dict[str, str] = {}
    proven = True
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[1])):
        if len(value) < 3:
            continue
        escaped = str(escape(value))
        proven = proven and safe_value(value) and safe_value(escaped)
        html_tag, text_tag = tag("h", name), tag("t", name)
        html = html.replace(escaped, html_tag)
        text = text.replace(value, text_tag)
        subject = subject.replace(value, text_tag)
        subs[html_tag], subs[text_tag] = escaped, value
    if not proven and (
        substitute(html, subs) != mail.html
        or substitute(text, subs) != mail.text
        or substitute(subject, subs) != mail.subject
    ):
        return None
    return subject, html, text, subs


def render_rows(
    campaign: CampaignInfo, rows: list[Any]
) -> tuple[list[Group], dict[str, list[int]]]:
    """Render each (delivery, subscriber...) row; groups of alike mails, and failures."""
    base = current_app.config["HELPDESK_BASE_URL"].rstrip("/")
    groups: dict[tuple[str, str, str], Group] = {}
    alone: list[Group] = []
    failed: dict[str, list[int]] = defaultdict(list)
    mailto = unsubscribe_links.mailto_address(campaign.from_addr)
    for delivery_id, subscriber_id, email, name, language, attributes in rows:
        unsubscribe = tokens.unsubscribe_token(
            subscriber_id, campaign.list_id, campaign.id, delivery_id
        )
        values = {
            "unsubscribe_url": f"{base}/u/{unsubscribe}",
            "preferences_url": f"{base}/preferences/{tokens.preferences_token(subscriber_id)}",
            "email": email,
            "name": name or "",
        }
        ctx = templates.context(
            {
                "name": name or "",
                "email": email,
                "language": language or "",
                "attributes": attributes or {},
            },
            unsubscribe_url=values["unsubscribe_url"],
            preferences_url=values["preferences_url"],
            list_name=campaign.list_name,
            campaign_name=campaign.name,
        )
        try:
            mail = templates.render_raw(campaign.sources, ctx)
        except TemplateProblem as problem:
            failed[f"template error: {problem}"].append(delivery_id)
            continue
        member = (
            delivery_id,
            unsubscribe_links.header_values(values["unsubscribe_url"], unsubscribe, mailto),
            {},
            formataddr((" ".join((name or "").split()), email)),
        )
        shape = skeleton(mail, values)
        if shape is None:
            group = Group(mail.subject, mail.html, mail.text or None)
            group.members.append(member)
            alone.append(group)
            continue
        subject, html, text, subs = shape
        key = (subject, html, text)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(subject, html, text or None, [], mail.html, values)
        group.members.append((member[0], member[1], subs, member[3]))
    return [*groups.values(), *alone], failed


def finish_group(group: Group) -> tuple[str, str]:
    """(html with CSS inlined, text) of a group; a derived text keeps the tags as text tags."""
    html = templates.inline_css(group.html)
    if group.text is not None:
        return html, group.text
    real = html_to_text(group.sample_html)
    text = real
    subs: dict[str, str] = {}
    for name, value in sorted(group.sample_values.items(), key=lambda kv: -len(kv[1])):
        if len(value) >= 3:
            text = text.replace(value, tag("t", name))
            subs[tag("t", name)] = value
    if substitute(text, subs) != real:
        # Cannot happen unless a tag-like text appeared; the HTML's shape is still right.
        text = html_to_text(group.html).replace("[%h-", "[%t-")
    return html, text


# -- hand-off ---------------------------------------------------------------------------------


def backend_batch(campaign: CampaignInfo, subject: str, html: str, text: str, members):
    """One backend batch: the shared skeleton, each member's substitutions and headers."""
    from helpdesk.outbound.backends import OutgoingBatch, Recipient

    return OutgoingBatch(
        from_addr=campaign.from_addr,
        subject=subject,
        text=text,
        html=html,
        reply_to=campaign.reply_to,
        headers={"Precedence": "bulk", "Auto-Submitted": "auto-generated"},
        recipients=[
            Recipient(
                to=[to],
                substitutions=subs,
                headers=headers,
                custom_args={"delivery_id": str(did), "campaign_id": str(campaign.id)},
            )
            for did, headers, subs, to in members
        ],
        categories=[f"campaign-{campaign.id}"],
    )
