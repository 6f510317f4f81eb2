"""Templates, segments and campaigns: validation, launch, dedupe, pause, cancel, schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from helpdesk.database import utcnow
from helpdesk.errors import ServiceError
from helpdesk.models import Suppression, SuppressionReason
from helpdesk.models.audience import SubscriptionStatus
from helpdesk.models.campaigns import Campaign, CampaignStatus, Delivery, DeliveryStatus, MailLayout
from helpdesk.outbound import bulk, campaigns, personalise, segments, templates, tokens
from tests.outbound.campaign_fixtures import *  # noqa: F403 (fixtures)
from tests.outbound.campaign_fixtures import POSTAL, add_list, add_subscribers


def _deliveries(session, campaign_id):
    return session.scalars(
        sa.select(Delivery).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
    ).all()


# -- templates --------------------------------------------------------------------------------


def test_an_undefined_variable_is_an_error_when_the_template_is_saved(session, postal):
    with pytest.raises(ServiceError, match="undefined"):
        templates.save_template("bad", subject="Hi {{ nmae }}", html="<p>x</p>")


def test_a_plain_body_passes_in_the_default_layout_with_links_and_address(session, postal):
    row = templates.save_template("plain", subject="Hello {{ name }}", html="<p>Hi!</p>")
    mail = templates.preview(row.id)
    assert mail.problems == []
    assert mail.subject == "Hello Ada Lovelace"
    assert 'href="http://helpdesk.test/u/preview-unsubscribe"' in mail.html
    assert "http://helpdesk.test/preferences/preview" in mail.text
    assert POSTAL in mail.text


def test_css_is_inlined_and_text_derived(session, postal):
    row = templates.save_template(
        "styled", subject="S", html="<style>p.x { color: red }</style><p class='x'>Hi</p>"
    )
    mail = templates.preview(row.id)
    assert 'style="color: red;"' in mail.html
    assert "<style" not in mail.html
    assert "Hi" in mail.text
    assert "Unsubscribe" in mail.text


def test_a_layout_that_drops_the_unsubscribe_link_or_address_fails(session, postal, make_committee):
    committee = make_committee()
    session.add(
        MailLayout(
            committee_id=committee.id,
            html="<div>{{ content }}</div><a href='{{ preferences_url }}'>prefs</a>",
            text="{{ content }}\n{{ preferences_url }}",
        )
    )
    session.flush()
    with pytest.raises(ServiceError) as error:
        templates.save_template(
            "no-unsub", subject="S", html="<p>x</p>", committee_slug=committee.slug
        )
    assert "unsubscribe link" in error.value.message
    assert "postal address" in error.value.message


def test_without_a_postal_address_a_newsletter_is_refused(session, app):
    with pytest.raises(ServiceError, match="HELPDESK_POSTAL_ADDRESS"):
        templates.save_template("nopostal", subject="S", html="<p>x</p>")


def test_subscriber_values_are_escaped_in_html(session, postal, newsletter):
    _, _, subscribers, template = newsletter(1)
    subscribers[0].name = "<script>x</script>"
    mail = templates.preview(template.id, subscribers[0].id)
    assert "<script>x" not in mail.html
    assert "&lt;script&gt;" in mail.html


# -- segments ---------------------------------------------------------------------------------


def test_segments_by_language_attribute_and_contact_kind(session, make_committee, postal):
    from helpdesk import contacts

    committee = make_committee()
    mailing_list = add_list(session, committee, "seg")
    add_subscribers(session, mailing_list, 2, language="de", attributes={"country": "DE"})
    add_subscribers(session, mailing_list, 3, start=10, language="en", attributes={"country": "IT"})
    speaker = contacts.get_or_create_contact("speaker@example.com", "Sam")
    speaker.add_kind("speaker")
    session.flush()
    add_subscribers(session, mailing_list, 1, start=20, contact_id=speaker.id)
    assert segments.count(mailing_list.id) == 6
    assert segments.count(mailing_list.id, {"languages": ["DE"]}) == 2
    assert segments.count(mailing_list.id, {"attributes": {"country": "IT"}}) == 3
    assert segments.count(mailing_list.id, {"contact_kinds": ["speaker"]}) == 1
    assert segments.count(mailing_list.id, {"languages": ["en"], "contact_kinds": ["speaker"]}) == 1
    with pytest.raises(ServiceError, match="unknown segment key"):
        segments.check_segment({"country": "IT"})


# -- launch -----------------------------------------------------------------------------------


def test_launch_writes_one_delivery_per_recipient_without_suppressed_or_unsubscribed(
    session, newsletter, via_stand_in
):
    _, mailing_list, subscribers, template = newsletter(6)
    session.add(
        Suppression(address_key=subscribers[0].address_key, reason=SuppressionReason.HARD_BOUNCE)
    )
    subscribers[1].subscriptions[0].status = SubscriptionStatus.UNSUBSCRIBED
    campaign = campaigns.create_campaign(
        mailing_list.slug, template.name, from_addr="news@conf.test"
    )
    session.commit()
    assert campaigns.launch(campaign.id) == 4
    rows = _deliveries(session, campaign.id)
    assert [r.status for r in rows] == [DeliveryStatus.SENT] * 4
    assert {r.address_key for r in rows} == {s.address_key for s in subscribers[2:]}
    assert session.get(Campaign, campaign.id).status == CampaignStatus.SENT
    received = via_stand_in.recipients_snapshot()
    assert sorted(r.address for r in received) == sorted(s.email for s in subscribers[2:])
    # Frozen at launch: editing the template afterwards changes nothing.
    assert session.get(Campaign, campaign.id).html.count("the schedule is out") == 1
    with pytest.raises(ServiceError):
        campaigns.launch(campaign.id)


def test_each_recipient_gets_personal_content_headers_and_valid_tokens(
    session, newsletter, via_stand_in
):
    _, mailing_list, _subscribers, template = newsletter(3)
    campaign = campaigns.create_campaign(
        mailing_list.slug, template.name, from_addr="news@conf.test"
    )
    session.commit()
    campaigns.launch(campaign.id)
    by_id = {r.id: r for r in _deliveries(session, campaign.id)}
    received = via_stand_in.recipients_snapshot()
    assert len(via_stand_in.accepted) == 1  # one request for the whole batch
    for copy in received:
        delivery = by_id[int(copy.custom_args["delivery_id"])]
        subscriber = delivery.subscriber
        assert copy.address == subscriber.email
        assert copy.subject == f"News for {subscriber.name}"
        assert f"Dear {subscriber.name}," in copy.html
        assert 'style="' in copy.html  # CSS inlined
        unsubscribe = copy.headers["List-Unsubscribe"]
        assert copy.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = unsubscribe.split(">")[0].lstrip("<")
        assert url.startswith("http://helpdesk.test/u/")
        assert "<mailto:" in unsubscribe
        claim = tokens.read_unsubscribe_token(url.rsplit("/", 1)[1])
        assert (claim.subscriber_id, claim.list_id, claim.campaign_id, claim.delivery_id) == (
            subscriber.id,
            mailing_list.id,
            campaign.id,
            delivery.id,
        )
        assert f'href="{url}"' in copy.html
        assert url in copy.text
        assert POSTAL in copy.text
        assert delivery.provider_id == copy.request.message_id


def test_launch_renders_for_a_real_subscriber_before_any_row(session, newsletter, via_stand_in):
    _, mailing_list, _subscribers, template = newsletter(2)
    template.html = "<p>{{ subscriber.attributes.ticket }}</p>"
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    session.commit()
    with pytest.raises(ServiceError, match="ticket"):
        campaigns.launch(campaign.id)
    assert _deliveries(session, campaign.id) == []
    assert session.get(Campaign, campaign.id).status == CampaignStatus.DRAFT


def test_an_unsubscribe_between_claim_and_hand_off_is_honoured(
    session, newsletter, via_stand_in, monkeypatch
):
    _, mailing_list, subscribers, template = newsletter(4)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    session.commit()
    # Launch without running the batch jobs, then unsubscribe one recipient mid-campaign.
    monkeypatch.setattr(bulk, "start_lanes", lambda campaign_id: None)
    campaigns.launch(campaign.id)
    subscribers[2].subscriptions[0].status = SubscriptionStatus.UNSUBSCRIBED
    session.add(
        Suppression(
            address_key=subscribers[3].address_key, reason=SuppressionReason.UNSUBSCRIBE_ALL
        )
    )
    session.commit()
    result = bulk.send_one_batch(campaign.id)
    assert result.handed_off == 2
    statuses = {r.subscriber_id: r.status for r in _deliveries(session, campaign.id)}
    assert statuses[subscribers[2].id] == DeliveryStatus.SKIPPED
    assert statuses[subscribers[3].id] == DeliveryStatus.SKIPPED
    assert sorted(r.address for r in via_stand_in.recipients_snapshot()) == sorted(
        s.email for s in subscribers[:2]
    )


def test_pause_resume_and_cancel_act_within_one_batch(
    session, newsletter, via_stand_in, monkeypatch
):
    _, mailing_list, _subscribers, template = newsletter(6)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    session.commit()
    monkeypatch.setattr(bulk, "start_lanes", lambda campaign_id: None)
    campaigns.launch(campaign.id)
    assert bulk.send_one_batch(campaign.id, size=2).handed_off == 2
    campaigns.pause(campaign.id)
    assert bulk.send_one_batch(campaign.id, size=2) is None
    assert len(via_stand_in.recipients_snapshot()) == 2
    campaigns.resume(campaign.id)
    assert bulk.send_one_batch(campaign.id, size=2).handed_off == 2
    assert campaigns.cancel(campaign.id) == 2
    assert bulk.send_one_batch(campaign.id, size=2) is None
    assert campaigns.counts(campaign.id)["sent"] == 4
    assert campaigns.counts(campaign.id)["cancelled"] == 2
    assert len(via_stand_in.recipients_snapshot()) == 4


def test_a_claim_interrupted_before_hand_off_returns_to_pending_and_after_is_uncertain(
    session, newsletter, via_stand_in, monkeypatch
):
    _, mailing_list, _subscribers, template = newsletter(4)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    session.commit()
    monkeypatch.setattr(bulk, "start_lanes", lambda campaign_id: None)
    campaigns.launch(campaign.id)
    first = bulk.claim(campaign.id, 2)
    second = bulk.claim(campaign.id, 2)
    # The second claim reached its committed hand-off step, then the worker vanished.
    session.execute(
        sa.update(Delivery)
        .where(Delivery.batch == second)
        .values(batch="h:" + second[2:], attempts=1)
    )
    session.execute(sa.update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert bulk.expire_leases() == (2, 2)
    assert first is not None
    counts = campaigns.counts(campaign.id)
    assert counts["pending"] == 2
    assert counts["uncertain"] == 2
    assert campaigns.resolve_uncertain(campaign.id, resend=False) == 2
    assert campaigns.counts(campaign.id)["dropped"] == 2


def test_a_scheduled_campaign_fires_once_and_a_late_one_waits(
    session, newsletter, via_stand_in, app
):
    _, mailing_list, _subscribers, template = newsletter(2)
    on_time = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    late = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    campaigns.schedule(on_time.id, utcnow() - timedelta(minutes=1))
    grace = app.config["HELPDESK_CAMPAIGN_GRACE_MINUTES"]
    campaigns.schedule(late.id, utcnow() - timedelta(minutes=grace + 5))
    session.commit()
    assert campaigns.fire_due() == [on_time.id]
    assert campaigns.fire_due() == []
    assert len(via_stand_in.recipients_snapshot()) == 2
    late_row = session.get(Campaign, late.id)
    assert late_row.status == CampaignStatus.SCHEDULED
    assert "confirm" in late_row.pause_reason
    # The organiser confirms by launching it.
    assert campaigns.launch(late.id) == 2
    assert len(via_stand_in.recipients_snapshot()) == 4


def test_campaign_status_counts(session, newsletter, via_stand_in):
    _, mailing_list, _subscribers, template = newsletter(3)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@conf.test")
    session.commit()
    campaigns.launch(campaign.id)
    info = campaigns.status(campaign.id)
    assert info["status"] == "sent"
    assert info["counts"]["sent"] == 3
    assert info["remaining"] == 0


@pytest.mark.parametrize(
    "name",
    ["Person 7", "name", "ail", "A & B <x>", "x%]y", "[%t-name%]", "Dear", "unsubscribe", ""],
)
def test_the_shared_skeleton_restores_every_recipients_exact_mail(name):
    from markupsafe import escape

    from helpdesk.outbound.backends.substitution import substitute
    from helpdesk.outbound.templates import MailContent

    values = {
        "unsubscribe_url": "http://helpdesk.test/u/abc.def",
        "preferences_url": "http://helpdesk.test/preferences/xyz",
        "email": "person7@example.com",
        "name": name,
    }
    mail = MailContent(
        subject=f"News for {name}",
        html=f"<p>Dear {escape(name)}, <a href='{values['unsubscribe_url']}'>unsubscribe</a> "
        f"{values['email']} <a href='{values['preferences_url']}'>prefs</a></p>",
        text=f"Dear {name}, email {values['email']}\n{values['unsubscribe_url']}",
    )
    shape = personalise.skeleton(mail, values)
    if shape is None:
        # Only a value that could meet a tag's text may fall back to a batch of its own.
        assert not personalise.safe_value(name)
        return
    subject, html, text, subs = shape
    assert substitute(subject, subs) == mail.subject
    assert substitute(html, subs) == mail.html
    assert substitute(text, subs) == mail.text


def test_bulk_tokens_are_exactly_what_the_serializer_makes(app, session):
    import time as clock

    for _ in range(3):
        second = int(clock.time())
        fast = tokens.unsubscribe_token(5, 6, 7, 8)
        reference = tokens._serializer("unsubscribe").dumps({"s": 5, "l": 6, "c": 7, "d": 8})
        if int(clock.time()) == second:
            break
    assert fast == reference
    assert tokens.read_preferences_token(tokens.preferences_token(9)) == 9
    with pytest.raises(tokens.InvalidToken):
        tokens.read_preferences_token(fast)
