"""``helpdesk list add`` and ``helpdesk subscribers import|export``."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from helpdesk.models import MailingList, Subscription
from helpdesk.outbound import suppressions


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_list_add_creates_a_committee_list(app, session, make_committee):
    make_committee("news")
    result = invoke(
        app, "list", "add", "conf-news", "--committee", "news", "--name", "News", "--double-opt-in"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "list conf-news created (double opt-in)\n"
    created = session.scalar(sa.select(MailingList).where(MailingList.slug == "conf-news"))
    assert created.double_opt_in is True
    assert created.committee.slug == "news"
    again = invoke(app, "list", "add", "conf-news", "--committee", "news", "--name", "News")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    missing = invoke(app, "list", "add", "other", "--committee", "nope", "--name", "Other")
    assert missing.exit_code == 1
    assert "no committee 'nope'" in missing.stderr


def test_subscribers_import_reports_bad_rows_and_shows_progress(
    app, session, make_committee, tmp_path
):
    make_committee("news")
    invoke(app, "list", "add", "conf-news", "--committee", "news", "--name", "News")
    suppressions.suppress("bounced@example.org", "hard_bounce", "bounce")
    session.flush()
    path = tmp_path / "people.csv"
    path.write_bytes(
        "\ufeffemail,name,language,city\n"
        "ana@example.org,Ana,it,Rome\n"
        "no-at-sign,X,,\n"
        "ANA@example.org,Again,,\n"
        "bounced@example.org,B,,\n".encode()
    )
    result = invoke(app, "subscribers", "import", str(path), "--list", "conf-news")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "people.csv:3: no-at-sign: invalid address",
        "people.csv:4: ANA@example.org: duplicate of line 2",
        "people.csv:5: bounced@example.org: suppressed (hard_bounce)",
        "4 rows: 1 subscribed, 0 already subscribed (details updated), 3 not imported",
    ]
    assert "importing people.csv" in result.stderr
    subscription = session.scalar(sa.select(Subscription))
    assert subscription.consent_method.value == "import"
    assert subscription.consent_source == "people.csv:2"
    assert subscription.subscriber.attributes == {"city": "Rome"}

    exported = invoke(app, "subscribers", "export", "--list", "conf-news")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["name"], r["language"], r["city"]) for r in rows] == [
        ("ana@example.org", "Ana", "it", "Rome")
    ]
    out = tmp_path / "out.csv"
    written = invoke(app, "subscribers", "export", "--list", "conf-news", str(out))
    assert written.exit_code == 0
    assert out.read_text() == exported.stdout


def test_subscribers_import_refuses_an_unknown_list_or_a_headerless_file(
    app, session, make_committee, tmp_path
):
    make_committee("news")
    invoke(app, "list", "add", "conf-news", "--committee", "news", "--name", "News")
    path = tmp_path / "x.csv"
    path.write_text("ana@example.org,Ana\n")
    unknown = invoke(app, "subscribers", "import", str(path), "--list", "nope")
    assert unknown.exit_code == 1
    assert "no list 'nope'" in unknown.stderr
    headerless = invoke(app, "subscribers", "import", str(path), "--list", "conf-news")
    assert headerless.exit_code == 1
    assert "header" in headerless.stderr
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0
