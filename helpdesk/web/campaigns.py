"""Organiser pages for campaigns: create, preview, test send, schedule, launch, follow.

Members and leads of the owning committee and site admins see a committee's campaigns
(helpdesk.access decides); anyone else gets 404, as for a missing campaign.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from helpdesk import access
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models.audience import MailingList, Subscription
from helpdesk.models.campaigns import Campaign, MailTemplate
from helpdesk.outbound import campaigns, reports, templates
from helpdesk.web import campaign_charts

bp = Blueprint("campaigns", __name__, url_prefix="/outbound/campaigns")

ACTIONS = ("launch", "pause", "resume", "cancel")


class CampaignForm(FlaskForm):
    """A new campaign: list, template, and optionally name, sender and segment."""

    list_slug = SelectField("List", validators=[DataRequired()])
    template = SelectField("Template", validators=[DataRequired()])
    name = StringField("Name", validators=[Optional(), Length(max=300)])
    from_addr = StringField("From", validators=[Optional(), Length(max=500)])
    segment = StringField("Segment (JSON)", validators=[Optional(), Length(max=5000)])
    create = SubmitField("Create draft")


class TestSendForm(FlaskForm):
    """Send one copy to an address."""

    address = StringField(
        "Address",
        validators=[DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), Length(max=320)],
    )
    send = SubmitField("Send test")


class ScheduleForm(FlaskForm):
    """When to fire (UTC)."""

    when = StringField("Send at (UTC, YYYY-MM-DDTHH:MM)", validators=[DataRequired()])
    schedule = SubmitField("Schedule")


class ActionForm(FlaskForm):
    """A bare POST with its CSRF token."""


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or not access.can_run_campaigns_of(current_user, campaign.committee_id):
        abort(404)
    return campaign


def _new_form() -> CampaignForm:
    form = CampaignForm()
    committee_ids = access.campaign_committee_ids(current_user)
    lists = db.session.scalars(
        sa.select(MailingList)
        .where(MailingList.committee_id.in_(committee_ids))
        .order_by(MailingList.name)
    ).all()
    form.list_slug.choices = [(m.slug, m.name) for m in lists]
    names = db.session.scalars(
        sa.select(MailTemplate)
        .where(
            sa.or_(
                MailTemplate.committee_id.in_(committee_ids), MailTemplate.committee_id.is_(None)
            )
        )
        .order_by(MailTemplate.name)
    ).all()
    form.template.choices = [(t.name, t.name) for t in names]
    return form


@bp.get("")
@login_required
def index():
    """The campaigns the organiser may run, and a form for a new one."""
    rows = db.session.scalars(access.visible_campaigns(current_user).limit(200)).all()
    return render_template("campaigns/index.html", campaigns=rows, form=_new_form())


@bp.post("")
@login_required
def create():
    """Create a draft campaign."""
    form = _new_form()
    if not form.validate_on_submit():
        flash(
            "Check the form: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()), "danger"
        )
        return redirect(url_for("campaigns.index"))
    mailing_list = db.session.scalar(
        sa.select(MailingList).where(MailingList.slug == form.list_slug.data)
    )
    if mailing_list is None or not access.can_run_campaigns_of(
        current_user, mailing_list.committee_id
    ):
        abort(404)
    try:
        segment = json.loads(form.segment.data) if form.segment.data else None
    except json.JSONDecodeError as error:
        flash(f"The segment is not JSON: {error}", "danger")
        return redirect(url_for("campaigns.index"))
    try:
        campaign = campaigns.create_campaign(
            mailing_list.slug,
            form.template.data,
            name=form.name.data or None,
            from_addr=form.from_addr.data or None,
            segment=segment,
            created_by_id=current_user.id,
        )
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("campaigns.index"))
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id))


def _preview(campaign: Campaign):
    subscriber = None
    chosen = request.args.get("subscriber", "")
    if chosen.isdigit():
        on_list = db.session.scalar(
            sa.select(Subscription.subscriber_id).where(
                Subscription.list_id == campaign.list_id,
                Subscription.subscriber_id == int(chosen),
            )
        )
        if on_list is not None:
            from helpdesk.models.audience import Subscriber

            subscriber = db.session.get(Subscriber, on_list)
    ctx = templates.sample_context(subscriber, campaign.mailing_list.name)
    return templates.validate(campaigns.sources_of(campaign), ctx), subscriber


@bp.get("/<int:campaign_id>")
@login_required
def detail(campaign_id: int):
    """The campaign: progress, results, preview, and what can be done with it now."""
    campaign = _campaign(campaign_id)
    info = campaigns.status(campaign.id)
    results = reports.campaign_report(campaign.id)
    preview, subscriber = _preview(campaign)
    total = max(info["recipients"], 1)
    done = info["recipients"] - info["remaining"]
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        info=info,
        preview=preview,
        preview_subscriber=subscriber,
        percent=round(100 * done / total) if info["recipients"] else 0,
        results=results,
        figures_chart=campaign_charts.figures_chart(results),
        timeline_chart=campaign_charts.timeline_chart(results),
        count_text=campaign_charts.count_text,
        percent_text=campaign_charts.percent_text,
        test_form=TestSendForm(),
        schedule_form=ScheduleForm(),
        action_form=ActionForm(),
    )


def _done(campaign_id: int, message: str | None = None, category: str = "success"):
    if message:
        flash(message, category)
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/<action>")
@login_required
def act(campaign_id: int, action: str):
    """Launch, pause, resume or cancel; resolve uncertain deliveries."""
    campaign = _campaign(campaign_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        if action == "launch":
            count = campaigns.launch(campaign.id)
            return _done(campaign_id, f"Launched to {count} recipients.")
        if action in ACTIONS:
            getattr(campaigns, action)(campaign.id)
            return _done(campaign_id, f"Campaign {action}d." if action != "resume" else "Resumed.")
        if action in ("resend", "drop"):
            count = campaigns.resolve_uncertain(campaign.id, resend=action == "resend")
            return _done(campaign_id, f"{count} uncertain deliveries: {action}.")
    except ServiceError as error:
        db.session.rollback()
        return _done(campaign_id, error.message, "danger")
    abort(404)


@bp.post("/<int:campaign_id>/test")
@login_required
def test_send(campaign_id: int):
    """Queue one copy to an address (subject marked as a test)."""
    campaign = _campaign(campaign_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        return _done(campaign_id, "Give a valid address for the test.", "danger")
    try:
        templates.send_test(
            campaigns.sources_of(campaign), form.address.data, from_addr=campaign.from_addr
        )
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        return _done(campaign_id, error.message, "danger")
    return _done(campaign_id, f"Test sent to {form.address.data}.")


@bp.post("/<int:campaign_id>/schedule")
@login_required
def schedule(campaign_id: int):
    """Fire the campaign at a given UTC time."""
    campaign = _campaign(campaign_id)
    form = ScheduleForm()
    if not form.validate_on_submit():
        return _done(campaign_id, "Give a time.", "danger")
    try:
        when = datetime.fromisoformat(form.when.data.strip())
    except ValueError:
        return _done(campaign_id, "The time must look like 2026-12-01T09:00.", "danger")
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    try:
        campaigns.schedule(campaign.id, when)
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        return _done(campaign_id, error.message, "danger")
    return _done(campaign_id, f"Scheduled for {when:%Y-%m-%d %H:%M} UTC.")
