"""Organiser pages for newsletter templates: list, edit with a live preview, test send.

A template belongs to a committee (its members and site admins edit it) or to no committee
(shared: every organiser may use and preview it, site admins edit it). A private
committee's templates do not exist for anyone outside it. The preview renders exactly what
a campaign would send, through helpdesk.outbound.templates, in a sandboxed frame.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from helpdesk import access, addresses
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import Committee, MailTemplate, Subscriber
from helpdesk.outbound import templates

bp = Blueprint("mail_templates", __name__, url_prefix="/outbound/templates")


class TemplateForm(FlaskForm):
    """A template's name, owner and sources, and whom to preview it for."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    committee = SelectField("Committee", validators=[Optional()])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=998)])
    html = TextAreaField("HTML body", validators=[DataRequired()])
    text = TextAreaField("Text body (empty: derived from the HTML)", validators=[Optional()])
    preview_as = StringField("Preview as subscriber (address)", validators=[Optional()])
    preview = SubmitField("Preview")
    save = SubmitField("Save")


class TestSendForm(FlaskForm):
    """Send one rendered copy to an address."""

    address = StringField(
        "Address",
        validators=[DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), Length(max=320)],
    )
    from_addr = StringField("From", validators=[DataRequired(), Length(max=500)])
    send = SubmitField("Send test")


def _owners() -> list[Committee]:
    """Committees whose templates the current user may write."""
    return list(
        db.session.scalars(
            sa.select(Committee)
            .where(Committee.id.in_(access.campaign_committee_ids(current_user)))
            .order_by(Committee.name)
        )
    )


def _template(template_id: int) -> MailTemplate:
    template = db.session.get(MailTemplate, template_id)
    if template is None or not access.can_read_template(current_user, template):
        abort(404)
    return template


def _form(template: MailTemplate | None = None) -> TemplateForm:
    form = TemplateForm(obj=template)
    choices = [(str(c.id), c.name) for c in _owners()]
    if current_user.is_admin:
        choices.insert(0, ("", "Shared (no committee)"))
    form.committee.choices = choices
    if template is not None and request.method == "GET":
        form.committee.data = str(template.committee_id or "")
    return form


def _candidate(form: TemplateForm) -> MailTemplate:
    committee_id = int(form.committee.data) if form.committee.data else None
    return MailTemplate(
        name=form.name.data.strip(),
        committee_id=committee_id,
        subject=form.subject.data,
        html=form.html.data,
        text=form.text.data or "",
    )


def _subscriber(address: str | None) -> Subscriber | None:
    if not address or not address.strip():
        return None
    key = addresses.normalize(address.strip())
    subscriber = db.session.scalar(sa.select(Subscriber).where(Subscriber.address_key == key))
    if subscriber is None:
        raise ServiceError(f"no subscriber {address.strip()!r}", field="preview_as")
    return subscriber


def _render(form: TemplateForm) -> templates.MailContent:
    candidate = _candidate(form)
    return templates.validate(
        templates.compose(candidate), templates.sample_context(_subscriber(form.preview_as.data))
    )


@bp.get("")
@login_required
def index():
    rows = db.session.scalars(access.visible_templates(current_user)).all()
    return render_template("outbound/templates.html", templates=rows)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    if not _owners() and not current_user.is_admin:
        abort(404)
    return _edit(None)


@bp.route("/<int:template_id>", methods=["GET", "POST"])
@login_required
def edit(template_id: int):
    return _edit(_template(template_id))


def _edit(template: MailTemplate | None):
    form = _form(template)
    writable = template is None or access.can_write_template(current_user, template)
    preview = None
    failed = False
    if form.validate_on_submit():
        try:
            preview = _render(form)
            if form.save.data and writable:
                if form.committee.data and not access.can_run_campaigns_of(
                    current_user, int(form.committee.data)
                ):
                    abort(404)
                if template is not None and template.name != form.name.data.strip():
                    raise ServiceError("a template's name cannot change", field="name")
                slug = (
                    db.session.get(Committee, int(form.committee.data)).slug
                    if (form.committee.data)
                    else None
                )
                saved = templates.save_template(
                    form.name.data,
                    subject=form.subject.data,
                    html=form.html.data,
                    text=form.text.data or "",
                    committee_slug=slug,
                )
                db.session.commit()
                flash(f"Template {saved.name} saved.", "success")
                return redirect(url_for(".edit", template_id=saved.id))
        except ServiceError as error:
            db.session.rollback()
            failed = True
            field = form._fields.get(error.field or "") or form.html
            field.errors = [*field.errors, str(error)]
    elif template is not None:
        try:
            preview = templates.validate(templates.compose(template), templates.sample_context())
        except ServiceError as error:
            flash(str(error), "danger")
    status = 400 if request.method == "POST" and (failed or form.errors) else 200
    return (
        render_template(
            "outbound/template_edit.html",
            form=form,
            template=template,
            writable=writable,
            preview=preview,
            test_form=TestSendForm(),
        ),
        status,
    )


@bp.post("/preview")
@login_required
def live_preview():
    """The rendered mail as JSON, for the editor's live preview (same checks as Preview)."""
    form = _form()
    if not form.validate_on_submit():
        problems = [
            f"{form[name].label.text}: {'; '.join(errs)}"
            for name, errs in form.errors.items()
            if name in form
        ]
        return jsonify(problems=problems or ["the form is incomplete"]), 400
    try:
        mail = _render(form)
    except ServiceError as error:
        return jsonify(problems=[str(error)]), 422
    return jsonify(subject=mail.subject, html=mail.html, text=mail.text, problems=mail.problems)


@bp.post("/<int:template_id>/test")
@login_required
def test_send(template_id: int):
    template = _template(template_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        flash("Give an address to send the test to, and a sender.", "danger")
        return redirect(url_for(".edit", template_id=template.id))
    try:
        templates.send_test(
            templates.compose(template), form.address.data.strip(), from_addr=form.from_addr.data
        )
        db.session.commit()
        flash(f"Test sent to {form.address.data.strip()}.", "success")
    except ServiceError as error:
        db.session.rollback()
        flash(str(error), "danger")
    return redirect(url_for(".edit", template_id=template.id))
