"""Forms of the list, subscriber and suppression pages, public and organiser (CSRF on all)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class SubscribeForm(FlaskForm):
    """The public subscribe form."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name (optional)", validators=[Optional(), Length(max=300)])


class ConfirmForm(FlaskForm):
    """The button that confirms a double opt-in (a GET never confirms)."""


class PreferencesForm(FlaskForm):
    """One action on the preference page: ``details``, ``unsubscribe`` (one list) or
    ``unsubscribe_all``."""

    action = HiddenField(validators=[DataRequired(), Length(max=32)])
    list_id = HiddenField(validators=[Optional(), Length(max=12)])
    name = StringField("Name", validators=[Optional(), Length(max=300)])
    language = StringField("Language", validators=[Optional(), Length(max=16)])


class NewListForm(FlaskForm):
    """Create a list."""

    slug = StringField("Slug", validators=[DataRequired(), Length(max=64)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    committee = SelectField("Committee", validators=[DataRequired()])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    double_opt_in = BooleanField("Double opt-in (subscribers confirm a mailed link)")
    public = BooleanField("Offer on the public subscribe form")


class AddSubscriberForm(FlaskForm):
    """Add a subscriber by hand (the organiser vouches for the consent)."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Optional(), Length(max=300)])
    language = StringField("Language", validators=[Optional(), Length(max=16)])


class ImportForm(FlaskForm):
    """Upload a CSV of subscribers."""

    file = FileField("CSV file", validators=[FileRequired()])


class SuppressionForm(FlaskForm):
    """Suppress an address by hand."""

    address = EmailField("Address", validators=[DataRequired(), Length(max=320)])
    note = StringField("Why", validators=[Optional(), Length(max=255)])


class RemoveSuppressionForm(FlaskForm):
    """Lift a manual suppression."""
