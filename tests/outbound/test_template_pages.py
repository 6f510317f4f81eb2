"""Organiser pages for templates: who sees which, the preview, saving, the test send."""

from __future__ import annotations

import re

import pytest

from helpdesk.models import MailTemplate, OutboundMessage
from tests.helpers import csrf_token, login
from tests.outbound.campaign_fixtures import *  # noqa: F403 (fixtures)
from tests.outbound.campaign_fixtures import BODY, add_list


def _fields(token: str, committee, **overrides) -> dict[str, str]:
    data = {
        "csrf_token": token,
        "name": "welcome",
        "committee": str(committee.id),
        "subject": "Welcome, {{ name }}",
        "html": "<style>p { color: #123456 }</style><p>Hello {{ name }}!</p>",
        "text": "",
        "preview_as": "",
    }
    data.update(overrides)
    return data


def test_a_member_previews_saves_and_test_sends(client, session, make_committee, make_user, postal):
    committee = make_committee()
    member = make_user(committees=[committee])
    session.commit()
    login(client, member)
    token = csrf_token(client, "/outbound/templates/new")

    shown = client.post(
        "/outbound/templates/new", data={**_fields(token, committee), "preview": "Preview"}
    )
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "Welcome, Ada Lovelace" in page  # the sample subscriber
    assert "color: #123456" in page  # the CSS inlined into the element
    assert postal in page  # the default layout adds the postal address
    assert session.query(MailTemplate).count() == 0  # a preview saves nothing

    saved = client.post(
        "/outbound/templates/new", data={**_fields(token, committee), "save": "Save"}
    )
    assert saved.status_code == 302
    template = session.query(MailTemplate).one()
    assert (template.name, template.committee_id) == ("welcome", committee.id)
    assert saved.headers["Location"].endswith(f"/outbound/templates/{template.id}")

    sent = client.post(
        f"/outbound/templates/{template.id}/test",
        data={"csrf_token": token, "address": "me@example.org", "from_addr": "n@conf.test"},
    )
    assert sent.status_code == 302
    mail = session.query(OutboundMessage).one()
    assert mail.to == ["me@example.org"]
    assert mail.subject == "[Test] Welcome, Ada Lovelace"


def test_an_undefined_variable_is_reported_and_nothing_is_saved(
    client, session, make_committee, make_user, postal
):
    committee = make_committee()
    member = make_user(committees=[committee])
    session.commit()
    login(client, member)
    token = csrf_token(client, "/outbound/templates/new")
    answer = client.post(
        "/outbound/templates/new",
        data={**_fields(token, committee, html="<p>{{ nmae }}</p>"), "save": "Save"},
    )
    assert answer.status_code == 400
    assert "nmae" in answer.get_data(as_text=True)
    assert session.query(MailTemplate).count() == 0

    live = client.post(
        "/outbound/templates/preview", data=_fields(token, committee, html="<p>{{ nmae }}</p>")
    )
    assert live.status_code == 200
    assert any("nmae" in problem for problem in live.get_json()["problems"])


def test_live_preview_renders_for_a_chosen_subscriber(
    client, session, newsletter, make_user, postal
):
    committee, _, subscribers, _ = newsletter(2)
    member = make_user(committees=[committee])
    session.commit()
    login(client, member)
    token = csrf_token(client, "/outbound/templates/new")
    answer = client.post(
        "/outbound/templates/preview",
        data=_fields(token, committee, preview_as=subscribers[1].email.upper()),
    )
    data = answer.get_json()
    assert answer.status_code == 200, data
    assert data["subject"] == f"Welcome, {subscribers[1].name}"
    assert data["problems"] == []
    assert re.search(r'href="[^"]*/u/[^"]+"', data["html"])  # a real, signed link
    unknown = client.post(
        "/outbound/templates/preview", data=_fields(token, committee, preview_as="x@nowhere.test")
    )
    assert unknown.status_code == 422
    assert client.post("/outbound/templates/preview", data={"name": "x"}).status_code == 400


def test_other_committees_templates_do_not_exist(
    app, client, session, newsletter, make_committee, make_user, postal
):
    _, _, _, template = newsletter(1)
    secret = make_committee(visibility="private")
    from helpdesk.outbound.templates import save_template

    hidden = save_template("secret-news", subject="S", html=BODY, committee_slug=secret.slug)
    outsider = make_user()
    admin = make_user(admin=True)
    session.commit()

    login(client, outsider)
    assert client.get(f"/outbound/templates/{template.id}").status_code == 404
    assert template.name not in client.get("/outbound/templates").get_data(as_text=True)
    assert client.get("/outbound/templates/new").status_code == 404

    admins = app.test_client()
    login(admins, admin)
    listing = admins.get("/outbound/templates").get_data(as_text=True)
    assert template.name in listing  # an admin runs open committees' newsletters
    assert hidden.name not in listing  # but a private committee's do not exist for them
    assert admins.get(f"/outbound/templates/{hidden.id}").status_code == 404


def test_saving_into_a_committee_one_does_not_belong_to_is_refused(
    client, session, make_committee, make_user, postal
):
    mine, theirs = make_committee(), make_committee()
    member = make_user(committees=[mine])
    session.commit()
    login(client, member)
    token = csrf_token(client, "/outbound/templates/new")
    answer = client.post("/outbound/templates/new", data={**_fields(token, theirs), "save": "Save"})
    assert answer.status_code == 400  # not one of the offered committees
    assert session.query(MailTemplate).count() == 0


@pytest.mark.parametrize("visibility", ["open", "members", "private"])
@pytest.mark.parametrize("persona", ["member", "non-member", "admin non-member"])
def test_campaign_and_template_pages_follow_the_rules(
    app, session, make_committee, make_user, postal, persona, visibility
):
    from helpdesk.outbound import campaigns, templates

    committee = make_committee(visibility=visibility)
    mailing_list = add_list(session, committee, slug=f"news-{committee.slug}")
    template = templates.save_template(
        f"tpl-{committee.slug}", subject="Secret plans", html=BODY, committee_slug=committee.slug
    )
    campaign = campaigns.create_campaign(
        mailing_list.slug, template.name, from_addr="n@conf.test", name="Secret campaign"
    )
    user = {
        "member": lambda: make_user(committees=[committee]),
        "non-member": lambda: make_user(),
        "admin non-member": lambda: make_user(admin=True),
    }[persona]()
    session.commit()
    client = app.test_client()
    login(client, user)
    allowed = persona == "member" or (persona == "admin non-member" and visibility != "private")
    expected = 200 if allowed else 404
    assert client.get(f"/outbound/campaigns/{campaign.id}").status_code == expected
    assert client.get(f"/outbound/templates/{template.id}").status_code == expected
    token = csrf_token(client, "/outbound/templates")
    for path in (
        f"/outbound/campaigns/{campaign.id}/launch",
        f"/outbound/templates/{template.id}/test",
    ):
        answer = client.post(path, data={"csrf_token": token, "address": "x@example.org"})
        assert (answer.status_code == 404) is not allowed, path
    listings = client.get("/outbound/campaigns").get_data(as_text=True) + client.get(
        "/outbound/templates"
    ).get_data(as_text=True)
    assert ("Secret campaign" in listings) is allowed
    assert (template.name in listings) is allowed
    assert (committee.name in listings) is allowed
