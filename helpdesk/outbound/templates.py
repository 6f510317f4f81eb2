"""Newsletter templates: sandboxed Jinja for subject, HTML and text inside a committee layout.

A template's HTML and text are bodies; the layout (the committee's, or the default one)
frames them and carries what every bulk mail must show: the unsubscribe link, the
preference link and the sender's postal address. Both are composed into one Jinja source
per part (the body captured as ``content``), which is what a campaign freezes at launch.

Undefined variables are errors (StrictUndefined): :func:`validate` renders for a sample
or a real subscriber, so a misspelt name is found at preview time, not at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import make_msgid, parseaddr
from functools import lru_cache
from typing import Any

import css_inline
import sqlalchemy as sa
from flask import current_app
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.html_text import html_to_text
from helpdesk.models import Committee
from helpdesk.models.audience import Subscriber
from helpdesk.models.campaigns import MailLayout, MailTemplate
from helpdesk.outbound import tokens
from helpdesk.outbound.render import TemplateProblem, default_template

__all__ = ["MailContent", "Sources", "TemplateProblem"]

_BODY_OPEN = "{% set content %}"
_BODY_CLOSE = "{% endset %}"
_WHITESPACE = re.compile(r"\s+")
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


@lru_cache(maxsize=2)
def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    # HTML autoescapes what a subscriber typed (a name with "<" stays text); subject and
    # text do not, they are never parsed as markup.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True
    )


@lru_cache(maxsize=512)
def _compile(source: str, html: bool):
    try:
        return _environment(html).from_string(source)
    except TemplateError as error:
        raise _problem(error) from error


def _problem(error: Exception) -> TemplateProblem:
    line = getattr(error, "lineno", None)
    where = f" (line {line})" if line else ""
    return TemplateProblem(f"{getattr(error, 'message', None) or error}{where}")


def render_source(source: str, context: dict[str, Any], *, html: bool) -> str:
    """Render one Jinja source in the sandbox; any failure is a :class:`TemplateProblem`."""
    try:
        return _compile(source, html).render(context)
    except TemplateProblem:
        raise
    except TemplateError as error:
        raise _problem(error) from error
    except (OverflowError, TypeError, ValueError, ArithmeticError) as error:
        raise TemplateProblem(str(error)) from error


@dataclass(frozen=True)
class Sources:
    """What a campaign sends, before rendering: subject, HTML and text (empty: derived)."""

    subject: str
    html: str
    text: str


@dataclass
class MailContent:
    """One recipient's rendered subject, HTML and text."""

    subject: str
    html: str
    text: str
    problems: list[str] = field(default_factory=list)


# -- layouts and composition -----------------------------------------------------------------


def layout_for(committee_id: int | None) -> tuple[str, str]:
    """(html, text) of the committee's layout, else the default row, else the shipped one."""
    rows = db.session.scalars(
        sa.select(MailLayout).where(
            sa.or_(MailLayout.committee_id == committee_id, MailLayout.committee_id.is_(None))
        )
    ).all()
    rows.sort(key=lambda r: r.committee_id is None)
    if rows:
        return rows[0].html, rows[0].text
    return default_template("newsletter-layout.html"), default_template("newsletter-layout.txt")


def compose(template: MailTemplate, layout: tuple[str, str] | None = None) -> Sources:
    """The template's body inside the layout, as single Jinja sources (what launch freezes)."""
    layout_html, layout_text = layout or layout_for(template.committee_id)
    html = f"{_BODY_OPEN}{template.html}{_BODY_CLOSE}{layout_html}"
    text = f"{_BODY_OPEN}{template.text}{_BODY_CLOSE}{layout_text}" if template.text else ""
    return Sources(template.subject, html, text)


# -- contexts ---------------------------------------------------------------------------------


def context(
    subscriber: Subscriber | dict[str, Any],
    *,
    unsubscribe_url: str,
    preferences_url: str,
    list_name: str = "",
    campaign_name: str = "",
) -> dict[str, Any]:
    """The variables a template sees for one recipient."""
    if isinstance(subscriber, Subscriber):
        person = {
            "name": subscriber.name or "",
            "email": subscriber.email,
            "language": subscriber.language or "",
            "attributes": dict(subscriber.attributes or {}),
        }
    else:
        person = dict(subscriber)
    return {
        "subscriber": person,
        "name": person["name"],
        "email": person["email"],
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "postal_address": current_app.config.get("HELPDESK_POSTAL_ADDRESS") or "",
        "list_name": list_name,
        "campaign_name": campaign_name,
    }


SAMPLE_SUBSCRIBER = {
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "language": "en",
    "attributes": {},
}


def sample_context(subscriber: Subscriber | None = None, list_name: str = "") -> dict[str, Any]:
    """A preview context: the sample (or a chosen) subscriber and recognisable links."""
    base = current_app.config["HELPDESK_BASE_URL"].rstrip("/")
    if subscriber is not None:
        return context(
            subscriber,
            unsubscribe_url=f"{base}/u/{tokens.unsubscribe_token(subscriber.id, 0)}",
            preferences_url=f"{base}/preferences/{tokens.preferences_token(subscriber.id)}",
            list_name=list_name or "the list",
        )
    return context(
        SAMPLE_SUBSCRIBER,
        unsubscribe_url=f"{base}/u/preview-unsubscribe",
        preferences_url=f"{base}/preferences/preview",
        list_name=list_name or "the list",
    )


# -- rendering --------------------------------------------------------------------------------


def render_raw(sources: Sources, ctx: dict[str, Any]) -> MailContent:
    """Subject, HTML and text rendered, CSS not yet inlined; text "" when to be derived."""
    subject = " ".join(render_source(sources.subject, ctx, html=False).split())
    html = render_source(sources.html, ctx, html=True)
    text = render_source(sources.text, ctx, html=False) if sources.text else ""
    return MailContent(subject, html, text)


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes, as mail clients want them."""
    try:
        return _INLINER.inline(html)
    except ValueError as error:
        raise TemplateProblem(f"CSS could not be inlined: {error}") from error


def finish(content: MailContent) -> MailContent:
    """Derive the text when it is empty, then inline the CSS."""
    text = content.text or html_to_text(content.html)
    return MailContent(content.subject, inline_css(content.html), text)


def render(sources: Sources, ctx: dict[str, Any]) -> MailContent:
    """What one recipient receives."""
    return finish(render_raw(sources, ctx))


def _flat(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def compliance_problems(mail: MailContent, ctx: dict[str, Any]) -> list[str]:
    """What a bulk mail lacks: visible unsubscribe and preference links, postal address."""
    problems = []
    postal = _flat(ctx["postal_address"])
    if not postal:
        problems.append("HELPDESK_POSTAL_ADDRESS is not set: bulk mail must show the address")
    html_text = _flat(html_to_text(mail.html))
    for label, url in (
        ("unsubscribe link", ctx["unsubscribe_url"]),
        ("preference link", ctx["preferences_url"]),
    ):
        if f'href="{escape(url)}"' not in mail.html:
            problems.append(f"the HTML has no visible {label} ({{{{ {_var(label)} }}}})")
        if url not in mail.text:
            problems.append(f"the text has no {label} ({{{{ {_var(label)} }}}})")
    if postal and postal not in html_text:
        problems.append("the HTML does not show the postal address ({{ postal_address }})")
    if postal and postal not in _flat(mail.text):
        problems.append("the text does not show the postal address ({{ postal_address }})")
    return problems


def _var(label: str) -> str:
    return "unsubscribe_url" if label.startswith("unsubscribe") else "preferences_url"


def validate(sources: Sources, ctx: dict[str, Any]) -> MailContent:
    """Render for ``ctx`` and check the layout's duties; problems are listed, not raised.

    A template error (syntax, undefined variable) leaves an empty mail with one problem.
    """
    try:
        mail = render(sources, ctx)
    except TemplateProblem as problem:
        return MailContent("", "", "", [str(problem)])
    mail.problems = compliance_problems(mail, ctx)
    return mail


# -- templates as organisers manage them ------------------------------------------------------


def _committee_id(slug: str | None) -> int | None:
    if not slug:
        return None
    committee_id = db.session.scalar(sa.select(Committee.id).where(Committee.slug == slug))
    if committee_id is None:
        raise ServiceError(f"no committee {slug!r}")
    return committee_id


def save_template(
    name: str,
    *,
    subject: str,
    html: str,
    text: str = "",
    committee_slug: str | None = None,
) -> MailTemplate:
    """Create or replace template ``name`` after checking it renders and keeps the duties."""
    name = name.strip()
    if not name:
        raise ServiceError("a template needs a name")
    committee_id = _committee_id(committee_slug)
    row = db.session.scalar(sa.select(MailTemplate).where(MailTemplate.name == name))
    candidate = MailTemplate(
        name=name, subject=subject, html=html, text=text or "", committee_id=committee_id
    )
    mail = validate(compose(candidate), sample_context())
    if mail.problems:
        raise ServiceError(f"template {name!r}: " + "; ".join(mail.problems))
    if row is None:
        row = candidate
        db.session.add(row)
    else:
        row.subject, row.html, row.text = subject, html, text or ""
        row.committee_id = committee_id
    db.session.flush()
    return row


def get_template(name_or_id: str | int) -> MailTemplate:
    """A template by id or by name."""
    row = None
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        row = db.session.get(MailTemplate, int(name_or_id))
    if row is None:
        row = db.session.scalar(sa.select(MailTemplate).where(MailTemplate.name == str(name_or_id)))
    if row is None:
        raise ServiceError(f"no template {name_or_id!r}")
    return row


def preview(template_id: int, subscriber_id: int | None = None) -> MailContent:
    """The template as the sample subscriber (or a chosen one) would receive it."""
    template = db.session.get(MailTemplate, template_id)
    if template is None:
        raise ServiceError(f"no template {template_id}")
    subscriber = db.session.get(Subscriber, subscriber_id) if subscriber_id else None
    if subscriber_id and subscriber is None:
        raise ServiceError(f"no subscriber {subscriber_id}")
    return validate(compose(template), sample_context(subscriber))


def send_test(
    sources: Sources,
    address: str,
    *,
    from_addr: str,
    subscriber_id: int | None = None,
) -> int:
    """Queue one copy (subject marked as a test) to ``address``; returns the mail's id."""
    from helpdesk.outbound.transactional import queue_message

    subscriber = db.session.get(Subscriber, subscriber_id) if subscriber_id else None
    mail = validate(sources, sample_context(subscriber))
    if mail.problems:
        raise ServiceError("; ".join(mail.problems))
    row = queue_message(
        "test",
        from_addr=from_addr,
        to=[address],
        subject=f"[Test] {mail.subject}",
        text=mail.text,
        html=mail.html,
        message_id=make_msgid(domain=_domain(from_addr)).strip("<>"),
    )
    return row.id


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "helpdesk.invalid"
