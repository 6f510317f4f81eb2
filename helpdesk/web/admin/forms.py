"""Forms of the admin pages (Flask-WTF: every one carries a CSRF token).

The forms parse and bound input; the services check the rules (valid addresses, unique
names, who may do what) and raise ServiceError naming the field.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

VISIBILITY_CHOICES = [
    SelectChoice("open", "open: every agent reads its tickets"),
    SelectChoice("members", "members: listed for all, read by members"),
    SelectChoice("private", "private: exists only for its members"),
]
ROLE_CHOICES = [SelectChoice("member", "member"), SelectChoice("lead", "lead")]
PRIORITY_CHOICES = [SelectChoice("", "unchanged")] + [
    SelectChoice(p, p) for p in ("low", "normal", "high", "urgent")
]


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class CommitteeForm(FlaskForm):
    """A committee's settings."""

    slug = StringField("Slug", validators=[Optional(), Length(max=64)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    visibility = SelectField("Visibility", choices=VISIBILITY_CHOICES)
    addresses = TextAreaField("Addresses (one a line)", validators=[Length(max=10000)])
    acknowledge = BooleanField("Acknowledge new tickets")
    ack_subject = StringField("Acknowledgement subject", validators=[Length(max=500)])
    ack_text = TextAreaField("Acknowledgement text", validators=[Length(max=20000)])
    discord_webhook = StringField("Discord webhook URL", validators=[Length(max=500)])
    remove_discord_webhook = BooleanField("Remove the Discord webhook")


class MemberForm(FlaskForm):
    """Add an agent to a committee."""

    email = EmailField("Agent's e-mail", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=ROLE_CHOICES)


class RoleForm(FlaskForm):
    """Change a member's role."""

    role = SelectField("Role", choices=ROLE_CHOICES)


class CannedForm(FlaskForm):
    """A canned reply."""

    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(
        "Text (Markdown, with {{ ticket.number }}, {{ contact.name }}, ...)",
        validators=[DataRequired(), Length(max=50000)],
    )


class RuleForm(FlaskForm):
    """A routing rule: every filled condition must hold (comma-separated alternatives)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    enabled = BooleanField("Enabled", default=True)
    recipient = StringField("Recipient addresses", validators=[Length(max=2000)])
    list_id = StringField("List-IDs", validators=[Length(max=2000)])
    sender_kind = StringField("Sender kinds (speaker, attendee, ...)", validators=[Length(max=500)])
    sender_domain = StringField("Sender domains", validators=[Length(max=2000)])
    subject_keywords = StringField("Subject keywords", validators=[Length(max=2000)])
    body_keywords = StringField("Body keywords", validators=[Length(max=2000)])
    # Checked by the service, which names the field.
    committee = SelectField("Route to", choices=[], validate_choice=False)
    tags = StringField("Tags", validators=[Length(max=500)])
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, validate_choice=False)


class TestMailForm(FlaskForm):
    """Headers or a whole raw mail to route."""

    mail = TextAreaField("Headers or raw mail", validators=[DataRequired(), Length(max=2_000_000)])


class InviteForm(FlaskForm):
    """Invite a new agent."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Length(max=200)])
    admin = BooleanField("Site admin")


class SetPasswordForm(FlaskForm):
    """Choose a password (invitation or reset)."""

    name = StringField("Your name", validators=[Optional(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField("Repeat the password", validators=[DataRequired(), Length(max=1024)])


class ResetRequestForm(FlaskForm):
    """Ask for a password reset link."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])


class AuditFilterForm(FlaskForm):
    """Filters of the audit log (a GET form: no CSRF needed)."""

    class Meta:
        csrf = False

    ticket = StringField("Ticket number", validators=[Optional(), Length(max=12)])
    user = StringField("Agent (e-mail)", validators=[Optional(), Length(max=320)])
    action = StringField("Action", validators=[Optional(), Length(max=64)])
