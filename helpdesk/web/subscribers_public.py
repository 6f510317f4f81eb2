"""Pages for subscribers, reached from mail and the conference site (no login).

``/subscribe/<slug>``, the double opt-in confirmation, the preference page and the RFC 8058
one-click unsubscribe. Links are signed tokens; a bad or expired one answers 400 with a
page that says so and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import csrf, db, limiter
from helpdesk.models import Subscriber, Subscription, SubscriptionStatus
from helpdesk.outbound import audience, signup, unsubscribe
from helpdesk.outbound.tokens import InvalidToken, read_confirm_token, read_preferences_token
from helpdesk.web.audience_forms import ConfirmForm, PreferencesForm, SubscribeForm

bp = Blueprint("subscribers_public", __name__)


def _subscribe_rate() -> str:
    return current_app.config["HELPDESK_SUBSCRIBE_RATE"]


def _invalid_link(reason: str = ""):
    return render_template("public/invalid_link.html", reason=reason), 400


def _subscribe_address_key() -> str:
    # Also per address: nobody can flood one mailbox with confirmation mails.
    return "subscribe:" + (request.form.get("email") or "").strip().lower()


@bp.route("/subscribe/<slug>", methods=["GET", "POST"])
@limiter.limit(_subscribe_rate, methods=["POST"])
@limiter.limit(_subscribe_rate, methods=["POST"], key_func=_subscribe_address_key)
def subscribe(slug: str):
    """The public subscribe form of a public list."""
    try:
        mailing_list = signup.public_list(slug)
    except NotFound:
        abort(404)
    form = SubscribeForm()
    if form.validate_on_submit():
        try:
            signup.request_subscription(
                slug, form.email.data or "", form.name.data or "", request.remote_addr or ""
            )
        except ServiceError as error:
            db.session.rollback()
            form.email.errors.append(error.message)
        else:
            db.session.commit()
            # The same answer whatever the address's history: nothing is revealed.
            return render_template(
                "public/subscribe_done.html", mailing_list=mailing_list, email=form.email.data
            )
    status = 400 if request.method == "POST" else 200
    return render_template("public/subscribe.html", mailing_list=mailing_list, form=form), status


@bp.route("/subscribe/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """GET shows a button; only its POST confirms (link scanners fetch with GET)."""
    try:
        subscription_id = read_confirm_token(token)
    except InvalidToken:
        return _invalid_link("This confirmation link is not valid or has expired.")

    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None:
        return _invalid_link("This confirmation link is no longer valid.")
    form = ConfirmForm()
    done = subscription.status == SubscriptionStatus.SUBSCRIBED
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            audience.confirm_subscription(
                subscription_id, f"form confirmed {request.remote_addr or ''}".strip()
            )
        except ServiceError as error:
            db.session.rollback()
            return _invalid_link(error.message)
        db.session.commit()
        done = True
    return render_template(
        "public/confirm.html",
        form=form,
        mailing_list=subscription.mailing_list,
        done=done,
        preferences_url=unsubscribe.preferences_url(subscription.subscriber_id),
    )


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str):
    """A subscriber's lists, name and language; unsubscribe from one list or from all."""
    try:
        subscriber_id = read_preferences_token(token)
    except InvalidToken:
        return _invalid_link("This preference link is not valid or has expired.")
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return _invalid_link("This preference link is no longer valid.")
    form = PreferencesForm()
    message = None
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            message = _apply_preferences(subscriber, form)
            db.session.commit()
        except ServiceError as error:
            db.session.rollback()
            message, status = error.message, 400
        db.session.refresh(subscriber)
    details = PreferencesForm(
        formdata=None, action="details", name=subscriber.name, language=subscriber.language
    )
    return render_template(
        "public/preferences.html",
        subscriber=subscriber,
        subscriptions=audience.subscriber_lists(subscriber.id),
        details=details,
        action_form=PreferencesForm(formdata=None),
        message=message,
        error=status != 200,
    ), status


def _apply_preferences(subscriber: Subscriber, form: PreferencesForm) -> str:
    action = form.action.data
    if action == "details":
        audience.update_preferences(
            subscriber.id, name=form.name.data or "", language=form.language.data or ""
        )
        return "Your details are saved."
    if action == "unsubscribe":
        try:
            list_id = int(form.list_id.data or "")
        except ValueError:
            raise ServiceError("no list chosen", field="list_id") from None
        if audience.get_subscription(list_id, subscriber.id) is None:
            raise ServiceError("you are not on that list", field="list_id")
        audience.unsubscribe(list_id, subscriber.id, "preferences")
        return "You are unsubscribed from that list."
    if action == "unsubscribe_all":
        audience.unsubscribe_all(subscriber.id, "preferences")
        return "You will receive no more mail from any of our lists."
    raise ServiceError("unknown action", field="action")


@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf.exempt
def one_click(token: str):
    """RFC 8058 one-click unsubscribe.

    A POST whose body is ``List-Unsubscribe=One-Click`` unsubscribes and answers 200: no
    cookie, no CSRF token, no redirect (mail providers post it on the user's behalf; the
    signed token is the authority). The button on the GET page posts the same body. A GET
    never unsubscribes.
    """
    if request.method == "GET":
        try:
            target = unsubscribe.resolve(token)
        except InvalidToken:
            return _invalid_link("This unsubscribe link is not valid or has expired.")
        subscription = audience.get_subscription(target.mailing_list.id, target.subscriber.id)
        already = subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED
        return render_template(
            "public/unsubscribe.html",
            target=target,
            done=already,
            confirm=not already,
            preferences_url=unsubscribe.preferences_url(target.subscriber.id),
        )
    if request.form.get("List-Unsubscribe") != "One-Click":
        return _invalid_link("An unsubscribe request must say List-Unsubscribe=One-Click.")
    try:
        outcome = unsubscribe.unsubscribe_with_token(token)
    except InvalidToken:
        db.session.rollback()
        return _invalid_link("This unsubscribe link is not valid or has expired.")
    db.session.commit()
    return render_template(
        "public/unsubscribe.html",
        target=outcome.target,
        done=True,
        confirm=False,
        preferences_url=unsubscribe.preferences_url(outcome.target.subscriber.id),
    )
