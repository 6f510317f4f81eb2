"""The transactional mail API: keys and scopes, field-named errors, templates, idempotency,
per-key rate limits, status read-back, and the whole way to SendGrid and back."""

from __future__ import annotations

import base64
import email
import json
import threading
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpdesk.agents import issue_api_token, revoke_api_token
from helpdesk.models import (
    ApiToken,
    IdempotencyRecord,
    MailTemplate,
    OutboundMessage,
    OutboundStatus,
    Suppression,
)
from tests.support.sendgrid_events import WEBHOOK_PUBLIC_KEY, make_event
from tests.support.sendgrid_server import API_KEY

URL = "/api/v1/messages"
DEFAULT_FROM = "Conference office <office@conference.test>"


@pytest.fixture
def api(app, session, make_user, monkeypatch):
    """An agent and a key with messages:send; ``api.post(body, **headers)``."""
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_FROM", DEFAULT_FROM)

    class Api:
        def __init__(self):
            self.user = make_user()
            self.token = self.key()

        def key(self, user=None, scopes=("messages:send",), rate_limit=None):
            token = issue_api_token(
                (user or self.user).id, scopes=list(scopes), rate_limit=rate_limit
            )
            session.commit()
            return token

        def post(self, client, body, token=None, raw=None, **headers):
            headers["Authorization"] = f"Bearer {token or self.token}"
            data = raw if raw is not None else json.dumps(body)
            return client.post(URL, data=data, headers=headers, content_type="application/json")

        def get(self, client, message_id, token=None):
            return client.get(
                f"{URL}/{message_id}", headers={"Authorization": f"Bearer {token or self.token}"}
            )

    return Api()


def _outbox(app):
    return {p: p.stat().st_mtime for p in Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml")}


def _new_mails(app, before):
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in _outbox(app)
        if p not in before
    ]


SIMPLE = {"to": "sam@example.net", "subject": "Your ticket", "text": "See you in Berlin."}


# -- keys and scopes -----------------------------------------------------------------------


def test_requests_without_a_valid_key_get_401(client, session, api):
    for headers in ({}, {"Authorization": "Bearer hd_nope"}):
        response = client.post(URL, json=SIMPLE, headers=headers)
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"
    revoke_api_token(session.scalars(sa.select(ApiToken)).one().id)
    session.commit()
    assert api.post(client, SIMPLE).status_code == 401
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_a_key_without_the_send_scope_gets_403(client, session, api):
    token = api.key(scopes=())
    response = api.post(client, SIMPLE, token=token)
    assert response.status_code == 403
    assert response.json["scope"] == "messages:send"
    read_only = api.key(scopes=("messages:read",))
    assert api.post(client, SIMPLE, token=read_only).status_code == 403
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"subject": "x", "text": "y"}, 400, "to"),
        ({**SIMPLE, "to": ["a@example.net", "not an address"]}, 422, "to[1]"),
        ({**SIMPLE, "to": 7}, 400, "to"),
        ({**SIMPLE, "cc": "x@"}, 422, "cc"),
        ({**SIMPLE, "reply_to": ["a@example.net", "b@example.net"]}, 422, "reply_to"),
        ({**SIMPLE, "bcc": "hidden@example.net"}, 400, "bcc"),
        ({"to": "a@example.net", "text": "no subject"}, 400, "subject"),
        ({"to": "a@example.net", "subject": "no body"}, 400, "text"),
        ({**SIMPLE, "subject": "two\nlines"}, 422, "subject"),
        ({**SIMPLE, "from": "stranger@evil.example"}, 422, "from"),
        ({**SIMPLE, "template": "welcome"}, 400, "subject"),
        ({**SIMPLE, "data": {"a": 1}}, 400, "data"),
        ({"to": "a@example.net", "template": "no-such-template"}, 422, "template"),
        ({**SIMPLE, "attachments": {"filename": "a"}}, 400, "attachments"),
        (
            {**SIMPLE, "attachments": [{"filename": "a.txt", "content": "@@@"}]},
            422,
            "attachments[0].content",
        ),
        (
            {**SIMPLE, "attachments": [{"filename": "../a.txt", "content": "YQ=="}]},
            422,
            "attachments[0].filename",
        ),
        (
            {**SIMPLE, "attachments": [{"filename": "a", "content": "YQ==", "content_type": "x"}]},
            422,
            "attachments[0].content_type",
        ),
        ([SIMPLE], 400, "body"),
    ],
)
def test_a_bad_request_gets_a_json_error_naming_the_field(
    client, session, api, body, status, field
):
    response = api.post(client, body)
    assert response.status_code == status, response.json
    assert response.json["error"] == "invalid"
    assert response.json["field"] == field
    assert response.json["reason"]
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0


def test_a_body_that_is_not_json_is_a_400_naming_the_body(client, session, api):
    response = api.post(client, None, raw=b"{to: nobody")
    assert response.status_code == 400
    assert response.json["field"] == "body"


def test_attachments_over_the_size_limit_are_refused(client, session, api, monkeypatch):
    from helpdesk.outbound import api_messages

    monkeypatch.setattr(api_messages, "MAX_ATTACHMENT_BYTES", 1000)
    content = base64.b64encode(b"x" * 600).decode()
    body = {
        **SIMPLE,
        "attachments": [{"filename": f"{i}.bin", "content": content} for i in range(2)],
    }
    response = api.post(client, body)
    assert response.status_code == 422
    assert response.json["field"] == "attachments"


def test_without_a_default_sender_the_from_field_is_required(
    client, session, api, app, monkeypatch
):
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_FROM", None)
    response = api.post(client, SIMPLE)
    assert response.status_code == 422
    assert response.json["field"] == "from"


# -- sending -------------------------------------------------------------------------------------


def test_a_message_is_written_queued_and_delivered(client, session, api, app, make_committee):
    make_committee("program", mail_addresses=["program@conference.test"], name="Program")
    before = _outbox(app)
    attachment = base64.b64encode(b"%PDF-1.4 ticket").decode()
    response = api.post(
        client,
        {
            "to": ["Sam Speaker <sam@example.net>", "co@example.net"],
            "cc": "chair@example.net",
            "reply_to": "program@conference.test",
            "from": "program@conference.test",
            "subject": "Your talk is accepted",
            "html": "<p>Congratulations, <b>Sam</b>!</p>",
            "attachments": [
                {"filename": "ticket.pdf", "content_type": "application/pdf", "content": attachment}
            ],
        },
    )
    assert response.status_code == 202, response.json
    assert response.json == {"id": response.json["id"], "status": "queued"}
    row = session.get(OutboundMessage, response.json["id"])
    assert row.api_user_id == api.user.id
    assert row.status == OutboundStatus.SENT
    assert row.text.strip() == "Congratulations, Sam!"
    (mail,) = _new_mails(app, before)
    assert mail["From"] == "Program <program@conference.test>"
    assert mail["To"] == "Sam Speaker <sam@example.net>, co@example.net"
    assert mail["Cc"] == "chair@example.net"
    assert mail["Reply-To"] == "program@conference.test"
    (part,) = list(mail.iter_attachments())
    assert part.get_filename() == "ticket.pdf"
    assert part.get_content() == b"%PDF-1.4 ticket"


def test_the_default_sender_is_used_when_from_is_left_out(client, session, api, app):
    before = _outbox(app)
    assert api.post(client, SIMPLE).status_code == 202
    (mail,) = _new_mails(app, before)
    assert mail["From"] == DEFAULT_FROM


def test_a_template_is_rendered_with_the_data(client, session, api, app):
    session.add(
        MailTemplate(
            name="registration",
            subject="Welcome, {{ name }}",
            html="<p>Your code is <b>{{ code }}</b>.</p>",
            text="",
        )
    )
    session.commit()
    before = _outbox(app)
    response = api.post(
        client,
        {
            "to": "sam@example.net",
            "template": "registration",
            "data": {"name": "Sam", "code": "X1"},
        },
    )
    assert response.status_code == 202
    row = session.get(OutboundMessage, response.json["id"])
    assert row.subject == "Welcome, Sam"
    assert row.html == "<p>Your code is <b>X1</b>.</p>"
    assert "Your code is X1." in row.text
    (mail,) = _new_mails(app, before)
    assert mail["Subject"] == "Welcome, Sam"


def test_an_undefined_template_variable_is_a_422_naming_it(client, session, api):
    session.add(MailTemplate(name="badge", subject="Badge for {{ name }}", html="{{ code }}"))
    session.commit()
    response = api.post(client, {"to": "a@example.net", "template": "badge", "data": {"name": "A"}})
    assert response.status_code == 422
    assert response.json["field"] == "data.code"
    assert "undefined" in response.json["reason"]


def test_the_sandbox_refuses_unsafe_template_code(client, session, api):
    session.add(
        MailTemplate(
            name="evil", subject="x", html="{{ ''.__class__.__mro__[1].__subclasses__() }}"
        )
    )
    session.commit()
    response = api.post(client, {"to": "a@example.net", "template": "evil"})
    assert response.status_code == 422
    assert response.json["field"] == "template"


def test_hard_bounced_addresses_are_suppressed_but_list_unsubscribes_are_not(client, session, api):
    session.add(Suppression(address_key="gone@example.net", reason="hard_bounce", source="t"))
    session.add(Suppression(address_key="left@example.net", reason="unsubscribe_all", source="t"))
    session.commit()
    gone = api.post(client, {**SIMPLE, "to": "gone@example.net"}).json["id"]
    left = api.post(client, {**SIMPLE, "to": "left@example.net"}).json["id"]
    assert api.get(client, gone).json["status"] == "suppressed"
    assert api.get(client, left).json["status"] == "sent"


# -- idempotency ---------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replay_the_first_answer(client, session, api, app):
    before = _outbox(app)
    first = api.post(client, SIMPLE, **{"Idempotency-Key": "order-17"})
    again = api.post(client, SIMPLE, **{"Idempotency-Key": "order-17"})
    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(_new_mails(app, before)) == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1
    other = api.post(client, {**SIMPLE, "text": "changed"}, **{"Idempotency-Key": "order-17"})
    assert other.status_code == 422
    assert other.json["field"] == "Idempotency-Key"
    # Keys belong to an API key: another key may use the same one.
    second_key = api.key()
    assert (
        api.post(client, SIMPLE, token=second_key, **{"Idempotency-Key": "order-17"}).json["id"]
        != first.json["id"]
    )


def test_concurrent_requests_with_one_idempotency_key_send_once(committed_app, monkeypatch):
    from helpdesk.agents import create_agent
    from helpdesk.extensions import db

    app = committed_app
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_FROM", DEFAULT_FROM)
    with app.app_context():
        user = create_agent("racer@conference.test", "Racer")
        db.session.flush()
        token = issue_api_token(user.id, scopes=["messages:send"], rate_limit="1000/second")
        db.session.commit()
    client = app.test_client()
    barrier = threading.Barrier(6)
    answers = []

    def send():
        barrier.wait()
        try:
            response = client.post(
                URL,
                json=SIMPLE,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
            )
        except Exception as error:  # reported in the assertion below
            answers.append((500, repr(error)))
        else:
            answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [status for status, _ in answers] == [202] * 6, answers
    assert len({body["id"] for _, body in answers}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 1
    assert len(list(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml"))) == 1


# -- rate limits --------------------------------------------------------------------------------


def test_each_key_has_its_own_rate_limit(client, session, api, app):
    limited = api.key(rate_limit="2/minute")
    assert [api.post(client, SIMPLE, token=limited).status_code for _ in range(2)] == [202, 202]
    refused = api.post(client, SIMPLE, token=limited)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json["error"] == "rate limited"
    # Another key is not held back by the first one's use.
    assert api.post(client, SIMPLE).status_code == 202
    app.config["HELPDESK_API_RATE"] = "1/minute"
    try:
        other = api.key()
        assert api.post(client, SIMPLE, token=other).status_code == 202
        assert api.post(client, SIMPLE, token=other).status_code == 429
    finally:
        app.config["HELPDESK_API_RATE"] = "20/second;10000/hour"


# -- reading back -------------------------------------------------------------------------------


def test_a_message_is_visible_only_to_the_agent_whose_key_sent_it(client, session, api, make_user):
    message_id = api.post(client, SIMPLE).json["id"]
    mine = api.get(client, message_id)
    assert mine.status_code == 200
    assert mine.json["status"] == "sent"
    assert mine.json["to"] == ["sam@example.net"]
    assert mine.json["events"] == []
    # Another key of the same agent sees it; another agent's key does not.
    assert api.get(client, message_id, token=api.key()).status_code == 200
    stranger = api.key(user=make_user())
    assert api.get(client, message_id, token=stranger).status_code == 404
    assert api.get(client, message_id + 1000).status_code == 404
    assert api.get(client, message_id, token=api.key(scopes=())).status_code == 403


# -- all the way to SendGrid and back ------------------------------------------------------------


def test_end_to_end_through_the_sendgrid_stand_in_and_its_events(
    client, session, api, app, stand_in
):
    from tests.support.sendgrid_events import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        WEBHOOK_PRIVATE_KEY,
        sign,
    )

    app.config.update(
        HELPDESK_MAIL_BACKEND="sendgrid",
        HELPDESK_SENDGRID_API_KEY=API_KEY,
        HELPDESK_SENDGRID_HOST=stand_in.url,
        HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY=WEBHOOK_PUBLIC_KEY,
    )
    try:
        response = api.post(client, {**SIMPLE, "html": "<p>See you in <i>Berlin</i>.</p>"})
        assert response.status_code == 202
        message_id = response.json["id"]
        (received,) = stand_in.received_by("sam@example.net")
        assert received.custom_args == {"outbound_message_id": str(message_id)}
        assert received.subject == "Your ticket"
        status = api.get(client, message_id).json
        assert status["status"] == "sent"
        assert status["provider_id"] == received.request.message_id
        events = [make_event(received, "processed"), make_event(received, "delivered")]
        body = json.dumps(events).encode()
        stamp = str(events[0]["timestamp"])
        posted = client.post(
            "/webhooks/sendgrid",
            data=body,
            headers={
                SIGNATURE_HEADER: sign(body, stamp, WEBHOOK_PRIVATE_KEY),
                TIMESTAMP_HEADER: stamp,
            },
        )
        assert posted.json["new"] == 2
        status = api.get(client, message_id).json
        assert [e["event"] for e in status["events"]] == ["processed", "delivered"]
    finally:
        app.config.update(
            HELPDESK_MAIL_BACKEND="files",
            HELPDESK_SENDGRID_API_KEY=None,
            HELPDESK_SENDGRID_HOST="https://api.sendgrid.com",
            HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY=None,
        )


@pytest.mark.parametrize("worker_options", [["--no-fork"], []], ids=["no-fork", "forking"])
def test_with_redis_an_api_message_is_queued_then_delivered_by_a_worker(
    committed_app, worker_options
):
    import subprocess
    import sys

    import redis

    from helpdesk.agents import create_agent
    from helpdesk.extensions import db
    from tests.conftest import REDIS_URL as SHARED_REDIS_URL
    from tests.conftest import ROOT, helpdesk_env

    # A database number of its own: workers and flushes of other Redis tests running at
    # the same time must not take or drop this job.
    REDIS_URL = SHARED_REDIS_URL.rsplit("/", 1)[0] + "/10"
    app = committed_app
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    app.config.update(HELPDESK_REDIS_URL=REDIS_URL, HELPDESK_MAIL_FROM=DEFAULT_FROM)
    try:
        with app.app_context():
            user = create_agent("queue@conference.test", "Queue")
            db.session.flush()
            token = issue_api_token(user.id, scopes=["messages:send"])
            db.session.commit()
        response = app.test_client().post(
            URL, json=SIMPLE, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 202
        message_id = response.json["id"]
        with app.app_context():
            # Written and committed; the worker has not run yet.
            assert db.session.get(OutboundMessage, message_id).status == OutboundStatus.QUEUED
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("helpdesk")),
                "worker",
                "mail-transactional",
                "--burst",
                *worker_options,
            ],
            env=helpdesk_env(app, HELPDESK_REDIS_URL=REDIS_URL),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        with app.app_context():
            row = db.session.get(OutboundMessage, message_id)
            assert row.status == OutboundStatus.SENT
        assert len(list(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml"))) == 1
    finally:
        app.config.update(HELPDESK_REDIS_URL=None)
        app.extensions.pop("helpdesk_redis", None)
        connection.flushdb()
