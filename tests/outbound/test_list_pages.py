"""Organiser pages: lists, subscribers, CSV upload and export, the suppression list."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from helpdesk import access
from helpdesk.models import AuditEvent, Subscription, Suppression
from helpdesk.outbound import audience, suppressions
from tests.helpers import csrf_token, login


@pytest.fixture
def world(session, make_committee, make_user):
    """Lists of an open, a members-only and a private committee, and who is who."""
    open_c = make_committee("program", visibility="open")
    members_c = make_committee("grants", visibility="members")
    private_c = make_committee("diversity", visibility="private")
    lists = {
        "open": audience.add_list("program-news", committee="program", name="Program news"),
        "members": audience.add_list("grant-news", committee="grants", name="Grant news"),
        "private": audience.add_list("safe-space", committee="diversity", name="Safe space"),
    }
    users = {
        "admin": make_user(admin=True),
        "program": make_user(committees=[open_c]),
        "program_lead": make_user(committees=[(open_c, "lead")]),
        "diversity": make_user(committees=[private_c]),
        "grants": make_user(committees=[members_c]),
        "outsider": make_user(),
    }
    session.flush()
    return lists, users


EXPECTED = {
    "admin": {"open", "members"},
    "program": {"open"},
    "program_lead": {"open"},
    "diversity": {"private"},
    "grants": {"members"},
    "outsider": set(),
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_who_sees_which_list(app, session, world, who):
    lists, users = world
    user = users[who]
    seen = {m.slug for m in session.scalars(access.visible_lists(user))}
    expected = {lists[k].slug for k in EXPECTED[who]}
    assert seen == expected
    client = app.test_client()
    login(client, user)
    index = client.get("/outbound/lists").get_data(as_text=True)
    for key, mailing_list in lists.items():
        page = client.get(f"/outbound/lists/{mailing_list.slug}")
        export = client.get(f"/outbound/lists/{mailing_list.slug}/export.csv")
        if key in EXPECTED[who]:
            assert page.status_code == 200
            assert export.status_code == 200
            assert mailing_list.name in index
        else:
            # A list one may not organise is exactly as missing as one that does not exist.
            assert page.status_code == 404
            assert export.status_code == 404
            assert mailing_list.name not in index


def test_anonymous_visitors_are_sent_to_log_in(client, session, world):
    assert client.get("/outbound/lists").status_code == 302
    assert client.get("/outbound/suppressions").status_code == 302


def _upload(client, slug: str, content: bytes, name: str = "people.csv"):
    token = csrf_token(client, f"/outbound/lists/{slug}")
    return client.post(
        f"/outbound/lists/{slug}/import",
        data={"csrf_token": token, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def test_a_csv_upload_shows_every_refused_row_by_line(app, session, world):
    _lists, users = world
    suppressions.suppress("bounced@example.org", "complaint", "fbl")
    session.flush()
    client = app.test_client()
    login(client, users["program"])
    content = (
        b"email,name,language\n"
        b"ana@example.org,Ana,it\n"
        b"broken,Bad,\n"
        b"ana@example.org,Again,\n"
        b"bounced@example.org,B,\n"
    )
    response = _upload(client, "program-news", content)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "4 rows: 1 subscribed" in html
    assert "<td>3</td><td>broken</td><td>invalid address</td>" in html
    assert "<td>4</td><td>ana@example.org</td><td>duplicate of line 2</td>" in html
    assert "<td>5</td><td>bounced@example.org</td><td>suppressed (complaint)</td>" in html
    subscription = session.scalar(sa.select(Subscription))
    assert subscription.consent_source == "people.csv:2"


def test_an_unreadable_upload_is_refused_with_its_reason(app, session, world):
    _lists, users = world
    client = app.test_client()
    login(client, users["program"])
    response = _upload(client, "program-news", b"name\nAna\n")
    assert response.status_code == 400
    assert "email column" in response.get_data(as_text=True)


def test_an_organiser_adds_a_subscriber_by_hand(app, session, world):
    lists, users = world
    client = app.test_client()
    login(client, users["program"])
    url = "/outbound/lists/program-news"
    bad = client.post(
        f"{url}/subscribers", data={"email": "nope", "csrf_token": csrf_token(client, url)}
    )
    assert bad.status_code == 400
    response = client.post(
        f"{url}/subscribers",
        data={"email": "Zed@example.org", "name": "Zed", "csrf_token": csrf_token(client, url)},
    )
    assert response.status_code == 302
    subscriber = audience.find_subscriber("zed@example.org")
    subscription = audience.get_subscription(lists["open"].id, subscriber.id)
    assert subscription.consent_method.value == "admin"
    assert subscription.consent_source == f"user {users['program'].id}"


def test_the_subscriber_table_pages_and_searches(app, session, world):
    lists, users = world
    rows = "".join(f"p{i:03d}@example.org,Person {i}\n" for i in range(60))
    from helpdesk.outbound.subscriber_import import import_csv

    import_csv(lists["open"].id, ("email,name\n" + rows).encode(), "x.csv")
    session.flush()
    client = app.test_client()
    login(client, users["program"])
    first = client.get("/outbound/lists/program-news").get_data(as_text=True)
    assert "p000@example.org" in first
    assert "p050@example.org" not in first
    assert "Page 1 of 2" in first
    second = client.get("/outbound/lists/program-news?page=2").get_data(as_text=True)
    assert "p050@example.org" in second
    found = client.get("/outbound/lists/program-news?q=person+42").get_data(as_text=True)
    assert "p042@example.org" in found
    assert "p041@example.org" not in found
    assert client.get("/outbound/lists/program-news?status=bogus").status_code == 400


def test_the_export_downloads_the_list_as_csv(app, session, world):
    lists, users = world
    subscriber = audience.upsert_subscriber("ana@example.org", name="Ana", attributes={"k": "v"})
    audience.subscribe(lists["open"].id, subscriber.id, method="admin", source="x")
    session.flush()
    client = app.test_client()
    login(client, users["program"])
    response = client.get("/outbound/lists/program-news/export.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["email"], r["name"], r["status"], r["k"]) for r in rows] == [
        ("ana@example.org", "Ana", "subscribed", "v")
    ]


def test_lists_are_created_only_for_ones_own_committees(app, session, world):
    _lists, users = world
    client = app.test_client()
    login(client, users["program"])
    form = client.get("/outbound/lists/new").get_data(as_text=True)
    assert 'value="program"' in form
    assert 'value="diversity"' not in form
    token = csrf_token(client, "/outbound/lists/new")
    refused = client.post(
        "/outbound/lists/new",
        data={"slug": "x", "name": "X", "committee": "diversity", "csrf_token": token},
    )
    assert refused.status_code == 400
    created = client.post(
        "/outbound/lists/new",
        data={
            "slug": "cfp",
            "name": "Call for papers",
            "committee": "program",
            "double_opt_in": "y",
            "csrf_token": token,
        },
    )
    assert created.status_code == 302
    assert audience.get_list("cfp").double_opt_in is True
    outsider = app.test_client()
    login(outsider, users["outsider"])
    assert outsider.get("/outbound/lists/new").status_code == 404


def test_the_suppression_list_is_for_admins_and_leads(app, session, world):
    _lists, users = world
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce record 1")
    session.flush()
    for who, status in [("admin", 200), ("program_lead", 200), ("program", 404)]:
        client = app.test_client()
        login(client, users[who])
        assert client.get("/outbound/suppressions").status_code == status


def test_manual_suppressions_are_added_and_removed_with_an_audit_trail(app, session, world):
    _lists, users = world
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce record 1")
    session.flush()
    client = app.test_client()
    login(client, users["admin"])
    url = "/outbound/suppressions"
    added = client.post(
        url,
        data={
            "address": "Quiet@example.org",
            "note": "asked",
            "csrf_token": csrf_token(client, url),
        },
    )
    assert added.status_code == 302
    row = session.scalar(
        sa.select(Suppression).where(Suppression.address_key == "quiet@example.org")
    )
    assert row.reason.value == "manual"
    page = client.get(url).get_data(as_text=True)
    assert "quiet@example.org" in page
    assert "bounced@example.org" in page
    bounced = session.scalar(
        sa.select(Suppression).where(Suppression.address_key == "bounced@example.org")
    )
    refused = client.post(
        f"{url}/{bounced.id}/remove", data={"csrf_token": csrf_token(client, url)}
    )
    assert refused.status_code == 400
    removed = client.post(f"{url}/{row.id}/remove", data={"csrf_token": csrf_token(client, url)})
    assert removed.status_code == 302
    assert not suppressions.is_suppressed("quiet@example.org")
    assert suppressions.is_suppressed("bounced@example.org")
    events = session.execute(
        sa.select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.data)
        .where(AuditEvent.action.startswith("suppression."))
        .order_by(AuditEvent.id)
    ).all()
    assert [(a, actor, data["address"]) for a, actor, data in events] == [
        ("suppression.added", users["admin"].id, "quiet@example.org"),
        ("suppression.removed", users["admin"].id, "quiet@example.org"),
    ]
    assert (
        client.post(
            f"{url}/999999/remove", data={"csrf_token": csrf_token(client, url)}
        ).status_code
        == 404
    )


def test_the_list_index_counts_subscriptions_by_status(app, session, world):
    lists, _users = world
    for i, status in enumerate(["subscribed", "subscribed", "pending"]):
        subscriber = audience.upsert_subscriber(f"c{i}@example.org")
        audience.subscribe(
            lists["open"].id, subscriber.id, method="form", source="x", pending=status == "pending"
        )
    session.flush()
    counts = audience.list_counts([lists["open"].id])[lists["open"].id]
    assert counts == {"subscribed": 2, "pending": 1, "unsubscribed": 0}
