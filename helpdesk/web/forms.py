"""Forms of the ticket pages (Flask-WTF: every one carries a CSRF token).

Choices that depend on the ticket (agents, committees, canned replies) are checked by the
services, which know the rules; the forms only parse and bound the input.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from helpdesk.replies import MAX_BODY_CHARS


class ReplyForm(FlaskForm):
    """A reply to the contact, in Markdown."""

    body = TextAreaField("Reply", validators=[Length(max=MAX_BODY_CHARS)])
    cc = StringField("Cc", validators=[Length(max=5000)])
    status = StringField("Then set the status to", validators=[Length(max=16)])
    canned = StringField("Canned reply", validators=[Optional(), Length(max=12)])
    snapshot = HiddenField(validators=[Length(max=64)])
    send = SubmitField("Send reply")
    preview = SubmitField("Preview")
    insert_canned = SubmitField("Insert")


class NoteForm(FlaskForm):
    """An internal note; @name mentions a colleague who may read the ticket."""

    text = TextAreaField("Internal note", validators=[DataRequired(), Length(max=MAX_BODY_CHARS)])


class AssignForm(FlaskForm):
    """Assign to an agent (``me``, an id) or to nobody (empty)."""

    assignee = StringField("Assignee", validators=[Length(max=12)])


class StatusForm(FlaskForm):
    """Change the status."""

    status = StringField("Status", validators=[InputRequired(), Length(max=16)])


class TagsForm(FlaskForm):
    """Replace the tags (comma-separated)."""

    tags = StringField("Tags", validators=[Length(max=2000)])


class MoveForm(FlaskForm):
    """Move to another committee (by slug)."""

    committee = StringField("Committee", validators=[InputRequired(), Length(max=64)])


class MergeForm(FlaskForm):
    """Merge this ticket into another one, after confirming."""

    target = IntegerField(
        "Merge into ticket number", validators=[InputRequired(), NumberRange(min=1)]
    )
    confirm = HiddenField(validators=[Length(max=3)])


class BulkForm(FlaskForm):
    """An action on the tickets ticked in a list: the button pressed names the action, and
    the field that goes with it the value."""

    action = StringField("Action", validators=[InputRequired(), Length(max=16)])
    assignee = StringField("Assign to", validators=[Length(max=12)])
    status = StringField("Status", validators=[Length(max=16)])
    tag = StringField("Tag", validators=[Length(max=64)])
    committee = StringField("Committee", validators=[Length(max=64)])
    next = HiddenField(validators=[Length(max=2000)])

    # Which field holds the value of each action.
    VALUE_FIELDS = {
        "assign": "assignee",
        "status": "status",
        "tag": "tag",
        "untag": "tag",
        "move": "committee",
    }

    def value(self) -> str:
        """The value of the chosen action."""
        name = self.VALUE_FIELDS.get(self.action.data or "")
        return (getattr(self, name).data or "").strip() if name else ""
