"""Lists, subscribers with consent, unsubscribing, the suppression list, CSV import/export."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from helpdesk import contacts
from helpdesk.errors import ServiceError
from helpdesk.models import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from helpdesk.outbound import audience, suppressions
from helpdesk.outbound.subscriber_export import export_csv
from helpdesk.outbound.subscriber_import import import_csv


@pytest.fixture
def news(session, make_committee):
    committee = make_committee("news")
    return audience.add_list("conf-news", committee=committee.slug, name="Conference news")


def _subscription(list_id: int, address: str) -> Subscription | None:
    subscriber = audience.find_subscriber(address)
    return audience.get_subscription(list_id, subscriber.id) if subscriber else None


def test_a_list_belongs_to_a_committee_and_its_slug_is_unique(session, news):
    assert news.committee.slug == "news"
    assert news.double_opt_in is False
    with pytest.raises(ServiceError, match="already exists"):
        audience.add_list("conf-news", committee="news", name="Again")
    with pytest.raises(ServiceError, match="no committee"):
        audience.add_list("other", committee="nope", name="Other")
    with pytest.raises(ServiceError, match="not a valid slug"):
        audience.add_list("Bad Slug", committee="news", name="Other")


def test_a_subscriber_is_one_row_per_normalised_address_linked_to_its_contact(session):
    contact = contacts.get_or_create_contact("Sam@Example.net", "Sam")
    first = audience.upsert_subscriber(" Sam@Example.NET ", name="Sam", language="en")
    again = audience.upsert_subscriber("sam@example.net", attributes={"country": "IT"})
    assert first.id == again.id
    assert again.address_key == "sam@example.net"
    assert again.contact_id == contact.id
    assert again.name == "Sam"
    assert again.language == "en"
    assert again.attributes == {"country": "IT"}
    with pytest.raises(ServiceError, match="language tag"):
        audience.upsert_subscriber("sam@example.net", language="english please")
    with pytest.raises(ServiceError, match="not a valid mail address"):
        audience.upsert_subscriber("not an address")


def test_subscribing_records_the_consent_and_keeps_the_first_one(session, news):
    subscriber = audience.upsert_subscriber("ana@example.org", name="Ana")
    sub = audience.subscribe(news.id, subscriber.id, method="admin", source="user 1")
    assert sub.status == SubscriptionStatus.SUBSCRIBED
    assert sub.consent_method.value == "admin"
    assert sub.consent_source == "user 1"
    assert sub.consent_at is not None
    assert sub.confirmed_at is not None
    again = audience.subscribe(news.id, subscriber.id, method="import", source="f.csv:2")
    assert again.id == sub.id
    assert again.consent_source == "user 1"


def test_unsubscribing_from_one_list_is_idempotent_and_blocks_a_vouched_return(session, news):
    subscriber = audience.upsert_subscriber("ana@example.org")
    audience.subscribe(news.id, subscriber.id, method="admin", source="x")
    assert audience.unsubscribe(news.id, subscriber.id, "preferences") is True
    assert audience.unsubscribe(news.id, subscriber.id, "preferences") is False
    sub = audience.get_subscription(news.id, subscriber.id)
    assert sub.status == SubscriptionStatus.UNSUBSCRIBED
    assert sub.unsubscribe_source == "preferences"
    assert sub.unsubscribed_at is not None
    with pytest.raises(ServiceError, match="unsubscribed from this list"):
        audience.subscribe(news.id, subscriber.id, method="admin", source="x")


def test_unsubscribing_from_everything_suppresses_the_address(session, news, make_committee):
    other = audience.add_list("talks", committee=make_committee().slug, name="Talks")
    subscriber = audience.upsert_subscriber("ana@example.org")
    for mailing_list in (news, other):
        audience.subscribe(mailing_list.id, subscriber.id, method="admin", source="x")
    assert audience.unsubscribe_all(subscriber.id, "preferences") == 2
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED
    assert suppressions.is_suppressed("ANA@example.org")
    reason = session.scalar(sa.select(Suppression.reason))
    assert reason.value == "unsubscribe_all"
    with pytest.raises(ServiceError, match="suppressed"):
        audience.subscribe(other.id, subscriber.id, method="admin", source="x")


def test_suppressing_a_bounce_marks_the_subscriber_and_is_idempotent(session):
    subscriber = audience.upsert_subscriber("gone@example.org")
    assert suppressions.suppress("Gone@example.org", "hard_bounce", "bounce record 1") is True
    assert suppressions.suppress("gone@example.org", "complaint", "later") is False
    session.refresh(subscriber)
    assert subscriber.status == SubscriberStatus.BOUNCED
    assert session.scalar(sa.select(Suppression.reason)).value == "hard_bounce"


def test_inbound_bounce_records_feed_the_same_suppression_list(session, news):
    from helpdesk.inbound.ingest import Source, ingest
    from tests.inbound.test_ingest import _dsn

    bounce = _dsn("earlier-mail@conference.test", "gone@example.org")
    assert ingest(bounce, Source("test")).outcome == "bounce"
    assert suppressions.is_suppressed("gone@example.org")
    report = _import(news.id, "email\ngone@example.org\n")
    assert [(p.line, p.reason) for p in report.problems] == [(2, "suppressed (hard_bounce)")]


def test_manual_suppressions_are_added_and_removed_with_audit_events(session, make_user):
    from helpdesk.models import AuditEvent

    admin = make_user(admin=True)
    row = suppressions.add_manual("Someone@example.org", "asked by phone", actor_id=admin.id)
    with pytest.raises(ServiceError, match="already suppressed"):
        suppressions.add_manual("someone@example.org", "", actor_id=admin.id)
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce")
    bounced = session.scalar(
        sa.select(Suppression).where(Suppression.address_key == "bounced@example.org")
    )
    with pytest.raises(ServiceError, match="only manual"):
        suppressions.remove_manual(bounced.id, actor_id=admin.id)
    assert suppressions.remove_manual(row.id, actor_id=admin.id) == "someone@example.org"
    assert not suppressions.is_suppressed("someone@example.org")
    actions = list(
        session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.action.startswith("suppression."))
            .order_by(AuditEvent.id)
        )
    )
    assert actions == ["suppression.added", "suppression.removed"]


# -- CSV import ---------------------------------------------------------------------------


def _import(list_id: int, text: str, name: str = "people.csv", encoding: str = "utf-8"):
    return import_csv(list_id, text.encode(encoding), name)


def test_a_csv_import_reports_every_bad_row_by_line_number(session, news):
    audience.upsert_subscriber("left@example.org")
    left = audience.find_subscriber("left@example.org")
    audience.subscribe(news.id, left.id, method="admin", source="x")
    audience.unsubscribe(news.id, left.id, "one-click")
    gone = audience.upsert_subscriber("gone-all@example.org")
    audience.unsubscribe_all(gone.id, "preferences")
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce")
    text = (
        "email,name,language,country\n"  # line 1
        "ana@example.org,Ana,it,IT\n"  # 2 ok
        "not-an-address,Bad,,\n"  # 3 invalid
        "ANA@example.org,Ana again,,\n"  # 4 duplicate of 2
        "bounced@example.org,B,,\n"  # 5 suppressed
        "left@example.org,L,,\n"  # 6 unsubscribed from this list
        "gone-all@example.org,G,,\n"  # 7 unsubscribed from everything
        ",No address,,\n"  # 8 empty address
        "ben@example.org,Ben,english,\n"  # 9 bad language
        "cy@example.org,Cy,,,extra\n"  # 10 too many fields
        "\n"  # 11 blank: not a row
        '"dee@example.org","Dee, the\nsecond",de,DE\n'  # 12-13 one row over two lines
    )
    report = _import(news.id, text)
    problems = [(p.line, p.reason) for p in report.problems]
    assert problems == [
        (3, "invalid address"),
        (4, "duplicate of line 2"),
        (5, "suppressed (hard_bounce)"),
        (6, "already unsubscribed from this list"),
        (7, "suppressed (unsubscribe_all)"),
        (8, "invalid address: empty"),
        (9, "'english' is not a language tag like en or pt-BR"),
        (10, "5 fields but the header has 4"),
    ]
    assert report.subscribed == 2
    assert report.rows == 10
    ana = _subscription(news.id, "ana@example.org")
    assert ana.status == SubscriptionStatus.SUBSCRIBED
    assert ana.consent_method.value == "import"
    assert ana.consent_source == "people.csv:2"
    assert ana.subscriber.attributes == {"country": "IT"}
    assert ana.subscriber.language == "it"
    dee = _subscription(news.id, "dee@example.org")
    assert dee.consent_source == "people.csv:12"
    assert dee.subscriber.name == "Dee, the\nsecond"


def test_a_subscriber_unsubscribed_from_everything_without_suppression_is_reported(session, news):
    subscriber = audience.upsert_subscriber("quiet@example.org")
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    session.flush()
    report = _import(news.id, "email\nquiet@example.org\n")
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "already unsubscribed (from everything)")
    ]


def test_a_csv_with_a_byte_order_mark_and_windows_line_ends_imports(session, news):
    report = import_csv(news.id, "\ufeffEmail,Name\r\nzoe@example.org,Zoë\r\n".encode(), "x.csv")
    assert report.problems == []
    assert report.subscribed == 1
    assert audience.find_subscriber("zoe@example.org").name == "Zoë"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"name,language\nAna,it\n", "header"),
        (b"email,name,email\n", "appears twice"),
        (
            b"email,name\nana@example.org,Ana\nbo@example.org,\xff\xfe\n",
            "line 3: the file is not UTF-8",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(session, news, data, message):
    with pytest.raises(ServiceError, match=message):
        import_csv(news.id, data, "x.csv")
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0


def test_importing_again_updates_details_and_keeps_consent(session, news):
    _import(news.id, "email,name,country\nana@example.org,Ana,IT\n", "first.csv")
    report = _import(
        news.id, "email,name,ticket,country\nana@example.org,Ana B,student,\n", "second.csv"
    )
    assert report.subscribed == 0
    assert report.already_subscribed == 1
    sub = _subscription(news.id, "ana@example.org")
    assert sub.consent_source == "first.csv:2"
    session.refresh(sub.subscriber)
    assert sub.subscriber.name == "Ana B"
    assert sub.subscriber.attributes == {"country": "IT", "ticket": "student"}


def test_an_import_confirms_pending_subscriptions_and_links_contacts(session, news):
    contact = contacts.get_or_create_contact("known@example.org", "Known")
    pending = audience.upsert_subscriber("wait@example.org")
    audience.subscribe(news.id, pending.id, method="form", source="form 1.2.3.4", pending=True)
    report = _import(news.id, "email\nwait@example.org\nknown@example.org\n", "list.csv")
    assert report.subscribed == 2
    session.expire_all()
    wait = _subscription(news.id, "wait@example.org")
    assert wait.status == SubscriptionStatus.SUBSCRIBED
    assert wait.consent_method.value == "import"
    assert wait.consent_source == "list.csv:2"
    assert audience.find_subscriber("known@example.org").contact_id == contact.id


def test_a_large_import_is_written_in_chunks_and_counted(session, news):
    rows = "".join(f"p{i}@example.org,P {i}\n" for i in range(2500))
    report = _import(news.id, "email,name\n" + rows + "p7@example.org,again\n")
    assert report.subscribed == 2500
    assert [(p.line, p.reason) for p in report.problems] == [(2502, "duplicate of line 9")]
    count = session.scalar(
        sa.select(sa.func.count()).select_from(Subscription).where(Subscription.list_id == news.id)
    )
    assert count == 2500
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 2500


def test_the_export_can_be_imported_again(session, news, make_committee):
    _import(
        news.id, "email,name,language,country\nana@example.org,Ana,it,IT\nbo@example.org,Bo,,\n"
    )
    bo = audience.find_subscriber("bo@example.org")
    audience.unsubscribe(news.id, bo.id, "preferences")
    out = io.StringIO()
    assert export_csv(news.id, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["email"], r["status"], r["country"]) for r in rows] == [
        ("ana@example.org", "subscribed", "IT"),
        ("bo@example.org", "unsubscribed", ""),
    ]
    assert rows[0]["consent_source"] == "people.csv:2"
    other = audience.add_list("copy", committee=make_committee().slug, name="Copy")
    report = import_csv(other.id, out.getvalue().encode(), "export.csv")
    # The subscription columns are not attributes, and the unsubscribed row stays out.
    assert report.subscribed == 1
    assert [(p.line, p.reason) for p in report.problems] == [(3, "status column says unsubscribed")]
    assert audience.find_subscriber("ana@example.org").attributes == {"country": "IT"}
