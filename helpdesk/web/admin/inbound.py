"""Admin pages of inbound mail (site admins): routing rules, mailboxes, quarantine."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.inbound import inbound_admin, rule_admin
from helpdesk.models import Committee, RoutingRule
from helpdesk.web.admin import bp, require_site_admin, show_error
from helpdesk.web.admin.forms import ActionForm, RuleForm, TestMailForm


@bp.before_request
def _site_admins_only():
    """Rules, mailboxes and quarantine span every committee: site admins only."""
    if request.endpoint and request.endpoint.split(".", 1)[1].startswith(
        ("rule", "mailbox", "quarantine")
    ):
        require_site_admin()


def _committee_choices() -> list[SelectChoice]:
    rows = db.session.scalars(sa.select(Committee).order_by(Committee.name))
    return [SelectChoice("", "(no committee: tags and priority only)")] + [
        SelectChoice(str(c.id), c.name) for c in rows
    ]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _save_rule(form: RuleForm, rule_id: int | None) -> RoutingRule | None:
    try:
        rule = rule_admin.save_rule(
            rule_id,
            name=form.name.data or "",
            conditions={key: _split(getattr(form, key).data) for key in rule_admin.CONDITIONS},
            committee_id=int(form.committee.data) if form.committee.data else None,
            tags=_split(form.tags.data),
            priority=form.priority.data,
            enabled=form.enabled.data,
            actor_id=current_user.id,
        )
    except ServiceError as error:
        db.session.rollback()
        show_error(form, error)
        return None
    db.session.commit()
    return rule


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    """The routing rules in order; add one."""
    form = RuleForm()
    form.committee.choices = _committee_choices()
    if request.method == "GET":
        form.enabled.data = True
    if form.validate_on_submit() and _save_rule(form, None) is not None:
        flash("Rule added.", "success")
        return redirect(url_for("admin.rules"))
    names = {c.id: c.name for c in db.session.scalars(sa.select(Committee))}
    return render_template(
        "admin/rules.html",
        rules=rule_admin.ordered_rules(),
        names=names,
        form=form,
        action_form=ActionForm(),
        test_form=TestMailForm(formdata=None),
        outcome=None,
    )


@bp.route("/rules/<int:rule_id>", methods=["GET", "POST"])
def rule_edit(rule_id: int):
    """Edit a routing rule."""
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        abort(404)
    form = RuleForm()
    form.committee.choices = _committee_choices()
    if request.method == "GET":
        form.name.data = rule.name
        form.enabled.data = rule.enabled
        for key in rule_admin.CONDITIONS:
            values = (rule.conditions or {}).get(key) or []
            getattr(form, key).data = ", ".join(values if isinstance(values, list) else [values])
        form.committee.data = str(rule.committee_id) if rule.committee_id else ""
        form.tags.data = ", ".join(rule.tags or [])
        form.priority.data = rule.priority or ""
    if form.validate_on_submit() and _save_rule(form, rule_id) is not None:
        flash("Rule saved.", "success")
        return redirect(url_for("admin.rules"))
    return render_template("admin/rule_edit.html", rule=rule, form=form)


@bp.route("/rules/<int:rule_id>/move", methods=["POST"])
def rule_move(rule_id: int):
    """Move a rule up or down."""
    if not ActionForm().validate_on_submit():
        abort(400)
    offset = -1 if request.form.get("direction") == "up" else 1
    try:
        rule_admin.move_rule(rule_id, offset, actor_id=current_user.id)
    except NotFound:
        abort(404)
    db.session.commit()
    return redirect(url_for("admin.rules"))


@bp.route("/rules/<int:rule_id>/delete", methods=["POST"])
def rule_delete(rule_id: int):
    """Delete a rule."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        rule_admin.delete_rule(rule_id, actor_id=current_user.id)
    except NotFound:
        abort(404)
    db.session.commit()
    flash("Rule deleted.", "success")
    return redirect(url_for("admin.rules"))


@bp.route("/rules/test", methods=["GET", "POST"])
def rule_test():
    """Paste headers or a raw mail; see where it would go."""
    form = TestMailForm()
    outcome = None
    if form.validate_on_submit():
        try:
            outcome = rule_admin.route_mail(form.mail.data or "")
        except ServiceError as error:
            show_error(form, error)
    return render_template("admin/rule_test.html", form=form, outcome=outcome)


# -- mailboxes ----------------------------------------------------------------------------------


@bp.route("/mailboxes")
def mailboxes():
    """Mailboxes and their health."""
    return render_template(
        "admin/mailboxes.html",
        mailboxes=inbound_admin.mailboxes(),
        action_form=ActionForm(),
        result=None,
        tested=None,
    )


@bp.route("/mailboxes/<int:mailbox_id>/test", methods=["POST"])
def mailbox_test(mailbox_id: int):
    """Log in to the mailbox now and show what happened."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        result = inbound_admin.check_login(mailbox_id, actor_id=current_user.id)
    except NotFound:
        abort(404)
    db.session.commit()
    return render_template(
        "admin/mailboxes.html",
        mailboxes=inbound_admin.mailboxes(),
        action_form=ActionForm(),
        result=result,
        tested=mailbox_id,
    )


@bp.route("/mailboxes/<int:mailbox_id>/enabled", methods=["POST"])
def mailbox_enabled(mailbox_id: int):
    """Start or stop fetching from a mailbox."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        inbound_admin.set_mailbox_enabled(
            mailbox_id, request.form.get("enabled") == "1", actor_id=current_user.id
        )
    except NotFound:
        abort(404)
    db.session.commit()
    return redirect(url_for("admin.mailboxes"))


# -- quarantine ---------------------------------------------------------------------------------


def _entry(entry_id: int):
    try:
        return inbound_admin.quarantine_entry(entry_id)
    except NotFound:
        abort(404)


@bp.route("/quarantine")
def quarantine():
    """Mail the ingester could not handle."""
    resolved = request.args.get("resolved") == "1"
    return render_template(
        "admin/quarantine.html",
        entries=inbound_admin.quarantine_entries(resolved=resolved),
        resolved=resolved,
    )


@bp.route("/quarantine/<int:entry_id>")
def quarantine_entry(entry_id: int):
    """One entry: its reason and headers."""
    entry = _entry(entry_id)
    try:
        headers = inbound_admin.header_text(entry)
    except OSError:
        headers = "(the raw mail is missing from the store)"
    return render_template(
        "admin/quarantine_entry.html", entry=entry, headers=headers, action_form=ActionForm()
    )


@bp.route("/quarantine/<int:entry_id>/raw")
def quarantine_raw(entry_id: int):
    """Download the raw mail (never shown inline)."""
    entry = _entry(entry_id)
    return Response(
        inbound_admin.raw_mail(entry),
        mimetype="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="quarantine-{entry.id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@bp.route("/quarantine/<int:entry_id>/retry", methods=["POST"])
def quarantine_retry(entry_id: int):
    """Run the mail through the pipeline again."""
    _entry(entry_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    result = inbound_admin.retry(entry_id, actor_id=current_user.id)
    db.session.commit()
    if result.outcome == "quarantined":
        flash("The mail failed again; it stays in quarantine with the new reason.", "warning")
    else:
        numbers = ", ".join(f"#{n}" for n in result.ticket_numbers)
        flash(f"Retried: {result.outcome} {numbers}".strip(), "success")
    return redirect(url_for("admin.quarantine"))


@bp.route("/quarantine/<int:entry_id>/delete", methods=["POST"])
def quarantine_delete(entry_id: int):
    """Delete an entry."""
    _entry(entry_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    inbound_admin.delete(entry_id, actor_id=current_user.id)
    db.session.commit()
    flash("Quarantine entry deleted.", "success")
    return redirect(url_for("admin.quarantine"))
