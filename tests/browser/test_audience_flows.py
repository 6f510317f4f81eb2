"""An organiser imports subscribers in Chromium; a subscriber uses the preference page and
the unsubscribe button."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from helpdesk.extensions import db
from helpdesk.models import Subscriber, Subscription, Suppression
from helpdesk.outbound import audience
from helpdesk.outbound.tokens import preferences_token, unsubscribe_token
from tests.browser.conftest import log_in, screenshot


def _make_list(live_server, committee_slug: str, slug: str, name: str) -> None:
    with live_server.app.app_context():
        audience.add_list(slug, committee=committee_slug, name=name)
        db.session.commit()
        db.session.remove()


def _statuses(live_server, address: str) -> dict[str, str]:
    with live_server.app.app_context():
        rows = db.session.execute(
            sa.select(Subscription.list_id, Subscription.status)
            .join(Subscriber)
            .where(Subscriber.address_key == address)
        ).all()
        from helpdesk.models import MailingList

        names = {m.id: m.slug for m in db.session.scalars(sa.select(MailingList))}
        result = {names[list_id]: status.value for list_id, status in rows}
        db.session.remove()
    return result


def test_an_organiser_uploads_a_csv_and_reads_the_report(context, live_server, scene, tmp_path):
    world = scene(agent_count=1, ticket_count=0)
    slug = f"{world.committee.slug}-news"
    _make_list(live_server, world.committee.slug, slug, f"{world.committee.name} news")
    csv_file = tmp_path / "attendees.csv"
    csv_file.write_text(
        "email,name,language,ticket\n"
        f"ana-{slug}@example.org,Ana,it,student\n"
        "not-an-address,Broken,,\n"
        f"ana-{slug}@example.org,Ana twice,,\n"
    )
    page = context.new_page()
    log_in(page, live_server, world.agents[0].email)
    page.get_by_role("link", name="Lists").click()
    page.get_by_role("link", name=f"{world.committee.name} news").click()
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv_file))
    page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("3 rows: 1 subscribed")
    problems = page.locator("#import-problems tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("3")
    expect(problems.nth(0)).to_contain_text("invalid address")
    expect(problems.nth(1)).to_contain_text("duplicate of line 2")
    expect(page.locator("#subscribers")).to_contain_text(f"ana-{slug}@example.org")
    screenshot(page, "list-import-report", tmp_path)
    assert _statuses(live_server, f"ana-{slug}@example.org") == {slug: "subscribed"}


def test_a_subscriber_manages_their_lists_on_the_preference_page(
    context, live_server, scene, tmp_path
):
    world = scene(agent_count=0, ticket_count=0)
    news, talks = f"{world.committee.slug}-n", f"{world.committee.slug}-t"
    _make_list(live_server, world.committee.slug, news, "Newsletter")
    _make_list(live_server, world.committee.slug, talks, "Talk announcements")
    address = f"bea-{world.committee.slug}@example.org"
    with live_server.app.app_context(), live_server.app.test_request_context():
        subscriber = audience.upsert_subscriber(address, name="Bea")
        for slug in (news, talks):
            audience.subscribe(
                audience.get_list(slug).id, subscriber.id, method="admin", source="test"
            )
        db.session.commit()
        prefs = preferences_token(subscriber.id)
        one_click = unsubscribe_token(subscriber.id, audience.get_list(news).id)
        db.session.remove()

    page = context.new_page()
    page.goto(f"{live_server.url}/preferences/{prefs}")
    expect(page.locator("#preference-lists")).to_contain_text("Talk announcements")
    page.get_by_role("button", name="Unsubscribe from Talk announcements").click()
    expect(page.get_by_role("status")).to_contain_text("unsubscribed from that list")
    assert _statuses(live_server, address) == {news: "subscribed", talks: "unsubscribed"}

    page.get_by_label("Name").fill("Bea B")
    page.get_by_label("Language").fill("de")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("details are saved")
    screenshot(page, "preferences", tmp_path)

    # The unsubscribe link of a mail: the page only asks; the button does it.
    page.goto(f"{live_server.url}/u/{one_click}")
    expect(page.get_by_role("heading")).to_contain_text("Unsubscribe from Newsletter?")
    assert _statuses(live_server, address)[news] == "subscribed"
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading")).to_contain_text("You are unsubscribed")
    assert _statuses(live_server, address) == {news: "unsubscribed", talks: "unsubscribed"}

    page.goto(f"{live_server.url}/preferences/{prefs}")
    page.get_by_role("button", name="Unsubscribe from everything").click()
    expect(page.get_by_text("You receive no mail from any of our lists.")).to_be_visible()
    with live_server.app.app_context():
        stored = db.session.scalar(sa.select(Subscriber).where(Subscriber.address_key == address))
        assert (stored.name, stored.language, stored.status.value) == (
            "Bea B",
            "de",
            "unsubscribed",
        )
        assert (
            db.session.scalar(
                sa.select(Suppression.reason).where(Suppression.address_key == address)
            ).value
            == "unsubscribe_all"
        )
        db.session.remove()
