"""Organiser pages: who sees a committee's campaigns, and the flow from draft to sent."""

from __future__ import annotations

import re

from helpdesk.models.campaigns import Campaign, CampaignStatus
from tests.helpers import csrf_token, login
from tests.outbound.campaign_fixtures import *  # noqa: F403 (fixtures)


def test_members_create_preview_test_send_and_launch(
    client, session, newsletter, make_user, via_stand_in
):
    committee, mailing_list, subscribers, template = newsletter(3)
    member = make_user(committees=[committee])
    session.commit()
    login(client, member)
    token = csrf_token(client, "/outbound/campaigns")
    created = client.post(
        "/outbound/campaigns",
        data={
            "csrf_token": token,
            "list_slug": mailing_list.slug,
            "template": template.name,
            "from_addr": "News <news@conf.test>",
            "segment": '{"languages": ["en"]}',
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    path = created.headers["Location"]
    campaign_id = int(re.search(r"/(\d+)$", path).group(1))
    page = client.get(path).get_data(as_text=True)
    assert "Preview for a sample subscriber" in page
    assert "News for Ada Lovelace" in page
    assert 'sandbox=""' in page
    chosen = client.get(f"{path}?subscriber={subscribers[1].id}").get_data(as_text=True)
    assert f"News for {subscribers[1].name}" in chosen
    sent = client.post(f"{path}/test", data={"csrf_token": token, "address": "me@conf.test"})
    assert sent.status_code == 302
    assert [r.address for r in via_stand_in.recipients_snapshot()] == ["me@conf.test"]
    assert via_stand_in.recipients_snapshot()[0].subject.startswith("[Test] News for")
    launched = client.post(f"{path}/launch", data={"csrf_token": token})
    assert launched.status_code == 302
    assert session.get(Campaign, campaign_id).status == CampaignStatus.SENT
    page = client.get(path).get_data(as_text=True)
    assert 'value="100"' in page
    assert len(via_stand_in.recipients_snapshot()) == 4


def test_other_committees_campaigns_are_not_found(client, session, newsletter, make_user):
    from helpdesk.outbound import campaigns

    _, mailing_list, _, template = newsletter(1)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@c.test")
    outsider = make_user()
    session.commit()
    login(client, outsider)
    assert client.get(f"/outbound/campaigns/{campaign.id}").status_code == 404
    assert campaign.name not in client.get("/outbound/campaigns").get_data(as_text=True)
    token = csrf_token(client, "/outbound/campaigns")
    assert (
        client.post(
            f"/outbound/campaigns/{campaign.id}/launch", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert session.get(Campaign, campaign.id).status == CampaignStatus.DRAFT


def test_actions_need_the_csrf_token(client, session, newsletter, make_user):
    from helpdesk.outbound import campaigns

    _, mailing_list, _, template = newsletter(1)
    campaign = campaigns.create_campaign(mailing_list.slug, template.name, from_addr="n@c.test")
    admin = make_user(admin=True)
    session.commit()
    login(client, admin)
    assert client.get(f"/outbound/campaigns/{campaign.id}").status_code == 200
    refused = client.post(f"/outbound/campaigns/{campaign.id}/launch", data={})
    assert refused.status_code == 400
    assert session.get(Campaign, campaign.id).status == CampaignStatus.DRAFT
