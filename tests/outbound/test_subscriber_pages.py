"""Pages for subscribers: the subscribe form, double opt-in, preferences, one-click unsubscribe."""

from __future__ import annotations

import email
import re
import time
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from helpdesk.models import (
    Campaign,
    Delivery,
    MailTemplate,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from helpdesk.outbound import audience, suppressions, unsubscribe
from helpdesk.outbound.tokens import preferences_token, unsubscribe_token
from tests.helpers import csrf_token, without_csrf

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def news(session, make_committee):
    committee = make_committee("news", mail_addresses=["news@conference.test"])
    mailing_list = audience.add_list(
        "conf-news", committee=committee.slug, name="Conference news", public=True
    )
    session.flush()
    return mailing_list


@pytest.fixture
def ana(session, news):
    subscriber = audience.upsert_subscriber("ana@example.org", name="Ana")
    audience.subscribe(news.id, subscriber.id, method="admin", source="test")
    session.flush()
    return subscriber


def _status(list_id: int, subscriber_id: int) -> SubscriptionStatus:
    """The status as stored (requests ran in their own sessions)."""
    from helpdesk.extensions import db

    subscription = audience.get_subscription(list_id, subscriber_id)
    db.session.refresh(subscription)
    return subscription.status


def _outbox(app) -> list[Path]:
    return sorted(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml"))


def _campaign_delivery(session, news, subscriber):
    template = MailTemplate(name="t", subject="Hi", html="<p>Hi</p>")
    session.add(template)
    session.flush()
    campaign = Campaign(committee_id=news.committee_id, list_id=news.id, template_id=template.id)
    session.add(campaign)
    session.flush()
    delivery = Delivery(
        campaign_id=campaign.id, subscriber_id=subscriber.id, address_key=subscriber.address_key
    )
    session.add(delivery)
    session.flush()
    return campaign, delivery


# -- one-click unsubscribe (RFC 8058) -------------------------------------------------------


def test_a_one_click_post_unsubscribes_with_no_cookie_csrf_or_redirect(app, session, news, ana):
    campaign, delivery = _campaign_delivery(session, news, ana)
    token = unsubscribe_token(ana.id, news.id, campaign.id, delivery.id)
    client = app.test_client(use_cookies=False)
    response = client.post(
        f"/u/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "You are unsubscribed" in response.get_data(as_text=True)
    subscription = audience.get_subscription(news.id, ana.id)
    session.refresh(subscription)
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
    assert subscription.unsubscribe_source == f"one-click campaign:{campaign.id}"
    session.refresh(delivery)
    assert delivery.unsubscribed_at is not None


def test_repeated_one_click_posts_are_idempotent(app, session, news, ana):
    token = unsubscribe_token(ana.id, news.id)
    client = app.test_client(use_cookies=False)
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    subscription = audience.get_subscription(news.id, ana.id)
    session.refresh(subscription)
    first = subscription.unsubscribed_at
    assert subscription.unsubscribe_source == "one-click"
    second = client.post(f"/u/{token}", data=ONE_CLICK)
    assert second.status_code == 200
    session.refresh(subscription)
    assert subscription.unsubscribed_at == first


def test_a_get_never_unsubscribes_it_shows_a_button_that_does(app, session, news, ana):
    token = unsubscribe_token(ana.id, news.id)
    client = app.test_client()
    page = client.get(f"/u/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED
    # The page's button posts its hidden field, with no CSRF token.
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert _status(news.id, ana.id) == SubscriptionStatus.UNSUBSCRIBED
    assert "You are unsubscribed" in client.get(f"/u/{token}").get_data(as_text=True)


def _altered(token: str) -> str:
    payload, rest = token.split(".", 1)
    flipped = "A" if payload[-1] != "A" else "B"
    return f"{payload[:-1]}{flipped}.{rest}"


@pytest.mark.parametrize("kind", ["forged", "altered", "other purpose", "expired", "garbage"])
def test_bad_unsubscribe_tokens_answer_400_and_change_nothing(
    app, session, news, ana, monkeypatch, kind
):
    if kind == "forged":
        token = URLSafeTimedSerializer("not-our-secret-" + "x" * 40, salt="helpdesk.unsubscribe")
        token = token.dumps({"s": ana.id, "l": news.id, "c": None, "d": None})
    elif kind == "altered":
        token = _altered(unsubscribe_token(ana.id, news.id))
    elif kind == "other purpose":
        token = preferences_token(ana.id)
    elif kind == "expired":
        real = time.time()
        with monkeypatch.context() as m:
            m.setattr(time, "time", lambda: real - 400 * 86400)
            token = unsubscribe_token(ana.id, news.id)
    else:
        token = "not-a-token"
    client = app.test_client(use_cookies=False)
    for response in (client.post(f"/u/{token}", data=ONE_CLICK), client.get(f"/u/{token}")):
        assert response.status_code == 400
        assert "This link does not work" in response.get_data(as_text=True)
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED


def test_a_post_without_the_one_click_body_changes_nothing(app, session, news, ana):
    token = unsubscribe_token(ana.id, news.id)
    response = app.test_client(use_cookies=False).post(f"/u/{token}", data={"x": "y"})
    assert response.status_code == 400
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED


def test_list_unsubscribe_headers_offer_one_click_and_mailto(app, session, news, ana):
    app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = "unsubscribe@conference.test"
    try:
        headers = unsubscribe.list_unsubscribe_headers(ana.id, news.id, 7, 9)
    finally:
        app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = None
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(
        r"<http://helpdesk\.test/u/(?P<t>[^>]+)>, "
        r"<mailto:unsubscribe@conference\.test\?subject=unsubscribe%20(?P<m>[^>]+)>",
        headers["List-Unsubscribe"],
    )
    assert match is not None
    assert match["t"] == match["m"]
    claim = unsubscribe.resolve(match["t"]).claim
    assert (claim.subscriber_id, claim.list_id, claim.campaign_id, claim.delivery_id) == (
        ana.id,
        news.id,
        7,
        9,
    )


@pytest.mark.parametrize("where", ["subject", "address"])
def test_a_mail_to_the_unsubscribe_address_unsubscribes(app, session, news, ana, where):
    token = unsubscribe_token(ana.id, news.id, None, None)
    app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = "unsubscribe@conference.test"
    try:
        assert unsubscribe.unsubscribe_by_mail(["other@conference.test"], token) is None
        assert unsubscribe.unsubscribe_by_mail(["unsubscribe@conference.test"], "hi") is None
        if where == "subject":
            outcome = unsubscribe.unsubscribe_by_mail(
                ["Unsubscribe <unsubscribe@conference.test>"], f"unsubscribe {token}"
            )
        else:
            outcome = unsubscribe.unsubscribe_by_mail([f"unsubscribe+{token}@conference.test"], "")
    finally:
        app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = None
    assert outcome is not None
    assert outcome.changed is True
    subscription = audience.get_subscription(news.id, ana.id)
    session.refresh(subscription)
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
    assert subscription.unsubscribe_source == "mailto"


def test_without_an_unsubscribe_address_the_mailto_link_names_the_sender(app, session, news, ana):
    headers = unsubscribe.list_unsubscribe_headers(
        ana.id, news.id, 7, 9, from_addr="News <news@conference.test>"
    )
    mailto = re.search(
        r"<mailto:([^?]+)\?subject=unsubscribe%20([^>]+)>", headers["List-Unsubscribe"]
    )
    assert mailto is not None
    assert mailto[1] == "news@conference.test"
    # What the mail client sends back reaches the sender's mailbox; the token decides.
    assert unsubscribe.unsubscribe_by_mail(["news@conference.test"], "Hello there") is None
    assert unsubscribe.unsubscribe_by_mail(["news@conference.test"], mailto[2]) is None
    outcome = unsubscribe.unsubscribe_by_mail(["news@conference.test"], f"unsubscribe {mailto[2]}")
    assert outcome is not None
    assert outcome.changed is True
    forged = mailto[2][:-3] + ("AAA" if not mailto[2].endswith("AAA") else "BBB")
    assert (
        unsubscribe.unsubscribe_by_mail(["news@conference.test"], f"unsubscribe {forged}") is None
    )


# -- the subscribe form ----------------------------------------------------------------------


def _subscribe(client, slug: str, address: str, name: str = ""):
    token = csrf_token(client, f"/subscribe/{slug}")
    return client.post(
        f"/subscribe/{slug}", data={"email": address, "name": name, "csrf_token": token}
    )


def test_single_opt_in_subscribes_with_a_form_consent(client, session, news):
    response = _subscribe(client, news.slug, "Ben@Example.org", "Ben")
    assert response.status_code == 200
    subscriber = audience.find_subscriber("ben@example.org")
    subscription = audience.get_subscription(news.id, subscriber.id)
    assert subscription.status == SubscriptionStatus.SUBSCRIBED
    assert subscription.consent_method.value == "form"
    assert subscription.consent_source.startswith("form ")
    assert subscriber.name == "Ben"


def test_the_form_needs_its_csrf_token(client, session, news):
    response = client.post(f"/subscribe/{news.slug}", data={"email": "ben@example.org"})
    assert response.status_code == 400
    assert audience.find_subscriber("ben@example.org") is None


def test_the_answer_never_reveals_an_address_history(client, session, news, ana):
    gone = audience.upsert_subscriber("gone@example.org")
    audience.subscribe(news.id, gone.id, method="admin", source="x")
    audience.unsubscribe(news.id, gone.id, "one-click")
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce")
    session.flush()
    pages = {}
    for address in (
        "new@example.org",
        "ana@example.org",
        "gone@example.org",
        "bounced@example.org",
    ):
        response = _subscribe(client, news.slug, address)
        assert response.status_code == 200
        pages[address] = without_csrf(response.get_data(as_text=True)).replace(address, "ADDR")
    assert len(set(pages.values())) == 1
    # The suppressed address got nothing; the returning one needs to confirm first.
    assert audience.find_subscriber("bounced@example.org") is None
    assert _status(news.id, gone.id) == SubscriptionStatus.UNSUBSCRIBED


def test_double_opt_in_mails_a_link_whose_get_does_not_confirm(app, client, session, news):
    news.double_opt_in = True
    session.flush()
    before = set(_outbox(app))
    assert _subscribe(client, news.slug, "cleo@example.org", "Cleo").status_code == 200
    subscriber = audience.find_subscriber("cleo@example.org")
    assert _status(news.id, subscriber.id) == SubscriptionStatus.PENDING
    (mail_file,) = set(_outbox(app)) - before
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    assert mail["To"] == "Cleo <cleo@example.org>"
    assert mail["From"] == "News <news@conference.test>"
    url = re.search(r"http://helpdesk\.test(/subscribe/confirm/\S+)", mail.get_content())[1]

    page = client.get(url)
    assert page.status_code == 200
    assert "Yes, subscribe me" in page.get_data(as_text=True)
    assert _status(news.id, subscriber.id) == SubscriptionStatus.PENDING
    # A POST without the page's CSRF token (a scanner, another site) confirms nothing.
    assert app.test_client().post(url).status_code == 400
    assert _status(news.id, subscriber.id) == SubscriptionStatus.PENDING

    confirmed = client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert confirmed.status_code == 200
    assert "Subscription confirmed" in confirmed.get_data(as_text=True)
    subscription = audience.get_subscription(news.id, subscriber.id)
    session.refresh(subscription)
    assert subscription.status == SubscriptionStatus.SUBSCRIBED
    assert subscription.confirmed_at is not None


def test_a_bad_confirmation_link_answers_400(client, session, news):
    assert client.get("/subscribe/confirm/forged.token.here").status_code == 400


def test_coming_back_after_unsubscribing_everything_needs_the_mailed_link(
    app, client, session, news, ana
):
    audience.unsubscribe_all(ana.id, "preferences")
    session.flush()
    before = set(_outbox(app))
    assert _subscribe(client, news.slug, "ana@example.org").status_code == 200
    assert _status(news.id, ana.id) == SubscriptionStatus.UNSUBSCRIBED
    (mail_file,) = set(_outbox(app)) - before
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    url = re.search(r"(/subscribe/confirm/\S+)", mail.get_content())[1]
    client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED
    session.refresh(ana)
    assert ana.status == SubscriberStatus.ACTIVE
    assert not suppressions.is_suppressed("ana@example.org")


def test_lists_that_are_not_public_have_no_form(client, session, news, make_committee):
    hidden = audience.add_list("internal", committee=make_committee().slug, name="Internal")
    session.flush()
    assert client.get(f"/subscribe/{hidden.slug}").status_code == 404
    assert client.get("/subscribe/nothing-here").status_code == 404


def test_the_subscribe_form_is_rate_limited(client, session, news):
    statuses = [_subscribe(client, news.slug, f"p{i}@example.org").status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]


def test_one_address_cannot_be_flooded_from_many_clients(app, session, news):
    statuses = []
    for i in range(6):
        client = app.test_client()
        token = csrf_token(client, f"/subscribe/{news.slug}")
        response = client.post(
            f"/subscribe/{news.slug}",
            data={"email": "victim@example.org", "csrf_token": token},
            environ_overrides={"REMOTE_ADDR": f"10.0.0.{i + 1}"},
        )
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429]


# -- the preference page ----------------------------------------------------------------------


def test_the_preference_page_unsubscribes_per_list_and_from_everything(
    client, session, news, ana, make_committee
):
    talks = audience.add_list("talks", committee=make_committee().slug, name="Talk news")
    audience.subscribe(talks.id, ana.id, method="admin", source="x")
    session.flush()
    url = f"/preferences/{preferences_token(ana.id)}"
    html = client.get(url).get_data(as_text=True)
    assert "Conference news" in html
    assert "Talk news" in html
    token = csrf_token(client, url)
    response = client.post(
        url, data={"action": "unsubscribe", "list_id": talks.id, "csrf_token": token}
    )
    assert response.status_code == 200
    assert _status(talks.id, ana.id) == SubscriptionStatus.UNSUBSCRIBED
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED
    subscription = audience.get_subscription(talks.id, ana.id)
    assert subscription.unsubscribe_source == "preferences"

    client.post(
        url, data={"action": "details", "name": "Ana B", "language": "it", "csrf_token": token}
    )
    session.refresh(ana)
    assert (ana.name, ana.language) == ("Ana B", "it")

    client.post(url, data={"action": "unsubscribe_all", "csrf_token": token})
    assert _status(news.id, ana.id) == SubscriptionStatus.UNSUBSCRIBED
    assert session.scalar(sa.select(Suppression.reason)).value == "unsubscribe_all"


def test_preference_forms_need_the_page_csrf_token(app, session, news, ana):
    url = f"/preferences/{preferences_token(ana.id)}"
    response = app.test_client().post(url, data={"action": "unsubscribe_all"})
    assert response.status_code == 400
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED


def test_a_preference_page_cannot_touch_another_subscribers_list(client, session, news, ana):
    other = audience.upsert_subscriber("bo@example.org")
    session.flush()
    url = f"/preferences/{preferences_token(other.id)}"
    token = csrf_token(client, url)
    response = client.post(
        url, data={"action": "unsubscribe", "list_id": news.id, "csrf_token": token}
    )
    assert response.status_code == 400
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(Subscription.subscriber_id == other.id)
        )
        == 0
    )
    assert _status(news.id, ana.id) == SubscriptionStatus.SUBSCRIBED


def test_a_bad_preference_link_answers_400(client, session, ana):
    assert client.get(f"/preferences/{_altered(preferences_token(ana.id))}").status_code == 400


def test_a_one_click_post_as_multipart_form_data_works_too(app, session, news, ana):
    token = unsubscribe_token(ana.id, news.id)
    response = app.test_client(use_cookies=False).post(
        f"/u/{token}", data=ONE_CLICK, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    assert _status(news.id, ana.id) == SubscriptionStatus.UNSUBSCRIBED


def test_an_expired_confirmation_link_answers_400_and_confirms_nothing(
    app, client, session, news, monkeypatch
):
    from helpdesk.outbound.tokens import confirm_token

    subscriber = audience.upsert_subscriber("late@example.org")
    pending = audience.subscribe(news.id, subscriber.id, method="form", source="x", pending=True)
    session.flush()
    real = time.time()
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: real - 8 * 86400)
        token = confirm_token(pending.id)
    assert client.get(f"/subscribe/confirm/{token}").status_code == 400
    assert client.post(f"/subscribe/confirm/{token}").status_code == 400
    assert _status(news.id, subscriber.id) == SubscriptionStatus.PENDING
