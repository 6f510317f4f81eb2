"""The template and campaign commands: names, output and errors as operators' scripts use them."""

from __future__ import annotations

import json

from tests.outbound.campaign_fixtures import *  # noqa: F403 (fixtures)
from tests.outbound.campaign_fixtures import add_list, add_subscribers


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_template_add_campaign_create_launch_and_status(
    app, session, make_committee, postal, via_stand_in, tmp_path
):
    committee = make_committee()
    mailing_list = add_list(session, committee, "cli-news")
    add_subscribers(session, mailing_list, 3)
    session.commit()
    html = tmp_path / "body.html"
    html.write_text("<p>Hello {{ name }}</p>")
    added = invoke(
        app,
        "template",
        "add",
        "cli-tpl",
        "--subject",
        "Hi {{ name }}",
        "--html-file",
        str(html),
        "--committee",
        committee.slug,
    )
    assert added.exit_code == 0, added.output
    created = invoke(
        app,
        "campaign",
        "create",
        "--list",
        "cli-news",
        "--template",
        "cli-tpl",
        "--from",
        "news@conf.test",
        "--segment",
        '{"languages": ["en"]}',
    )
    assert created.exit_code == 0, created.output
    campaign_id = int(created.output.strip())
    launched = invoke(app, "campaign", "launch", str(campaign_id))
    assert "launched to 3 recipients" in launched.output
    status = json.loads(invoke(app, "campaign", "status", str(campaign_id), "--json").output)
    assert status["status"] == "sent"
    assert status["counts"]["sent"] == 3
    assert len(via_stand_in.recipients_snapshot()) == 3


def test_bad_input_is_a_clear_error(app, session, postal, tmp_path):
    html = tmp_path / "body.html"
    html.write_text("<p>Hello {{ nmae }}</p>")
    bad = invoke(app, "template", "add", "x", "--subject", "S", "--html-file", str(html))
    assert bad.exit_code != 0
    assert "nmae" in bad.output
    missing = invoke(app, "campaign", "create", "--list", "nope", "--template", "x")
    assert missing.exit_code != 0
    assert "no list 'nope'" in missing.output
    segment = invoke(app, "campaign", "launch", "999999")
    assert "no campaign 999999" in segment.output


def test_template_preview_and_test_send(app, session, postal, via_stand_in, tmp_path):
    html = tmp_path / "body.html"
    html.write_text("<p>Hello {{ name }}</p>")
    invoke(app, "template", "add", "greet", "--subject", "Hi {{ name }}", "--html-file", str(html))
    shown = invoke(app, "template", "preview", "greet")
    assert "Subject: Hi Ada Lovelace" in shown.output
    assert "Hello Ada Lovelace" in shown.output
    sent = invoke(app, "template", "test", "greet", "--to", "me@conf.test", "--from", "n@conf.test")
    assert sent.exit_code == 0, sent.output
    (copy,) = via_stand_in.recipients_snapshot()
    assert copy.address == "me@conf.test"
    assert copy.subject == "[Test] Hi Ada Lovelace"
