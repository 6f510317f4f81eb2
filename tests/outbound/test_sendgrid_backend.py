"""The SendGrid backend against the local stand-in: requests, splitting, content."""

from __future__ import annotations

import json

import pytest

from helpdesk.outbound.backends import Outcome, OutgoingAttachment, OutgoingBatch, Recipient
from helpdesk.outbound.backends.sendgrid_request import (
    MAX_BODY_BYTES,
    personalization,
    plan_requests,
    shared_fields,
)
from tests.outbound.conftest import make_batch


def test_single_recipient_request_shape(stand_in, sendgrid_backend):
    [result] = sendgrid_backend().send(make_batch(1, categories=["newsletter"]))
    assert result.outcome == Outcome.ACCEPTED
    [request] = stand_in.accepted
    assert result.provider_id == request.message_id
    body = request.body
    assert body["from"] == {"email": "office@conference.example", "name": "Konferenz Büro"}
    assert body["subject"] == "Hello -name-"
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    assert body["headers"] == {"Auto-Submitted": "auto-generated"}
    assert body["categories"] == ["newsletter"]
    assert body["personalizations"] == [
        {
            "to": [{"email": "person0@example.com", "name": "Person 0"}],
            "substitutions": {"-name-": "Person 0", "-code-": "C00000"},
            "headers": {
                "List-Unsubscribe": "<https://conference.example/unsubscribe/0>",
                "Message-ID": "<delivery-0@conference.example>",
            },
            "custom_args": {"delivery_id": "0"},
        }
    ]


def test_every_recipient_gets_its_own_values(stand_in, sendgrid_backend):
    results = sendgrid_backend().send(make_batch(40))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert len(stand_in.accepted) == 1
    for i in range(40):
        [copy] = stand_in.received_by(f"person{i}@example.com")
        assert copy.subject == f"Hello Person {i}"
        assert copy.text == f"Dear Person {i},\nyour code is C{i:05d}.\n"
        assert f"<b>C{i:05d}</b>" in copy.html
        assert copy.custom_args == {"delivery_id": str(i)}
        assert copy.headers["Message-ID"] == f"<delivery-{i}@conference.example>"


def test_batches_split_at_1000_personalizations(stand_in, sendgrid_backend):
    results = sendgrid_backend().send(make_batch(2500))
    assert [r.index for r in results] == list(range(2500))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert [len(a.body["personalizations"]) for a in stand_in.accepted] == [1000, 1000, 500]
    ids = [a.message_id for a in stand_in.accepted]
    assert [r.provider_id for r in results] == [ids[0]] * 1000 + [ids[1]] * 1000 + [ids[2]] * 500
    assert len(stand_in.recipients_snapshot()) == 2500


def test_requests_split_at_1000_addresses(stand_in, sendgrid_backend):
    batch = make_batch(600)
    for i, recipient in enumerate(batch.recipients):
        recipient.cc = [f"cc{i}@example.com"]
    results = sendgrid_backend().send(batch)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert [len(a.body["personalizations"]) for a in stand_in.accepted] == [500, 100]


def test_a_repeated_address_goes_into_another_request(stand_in, sendgrid_backend):
    batch = make_batch(3)
    batch.recipients[2].to = ["PERSON0@example.com"]
    results = sendgrid_backend().send(batch)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert [len(a.body["personalizations"]) for a in stand_in.accepted] == [2, 1]
    assert len(stand_in.received_by("person0@example.com")) == 2


def test_an_address_twice_in_one_copy_is_sent_once(stand_in, sendgrid_backend):
    batch = make_batch(1)
    batch.recipients[0].cc = ["person0@example.com", "other@example.com"]
    [result] = sendgrid_backend().send(batch)
    assert result.outcome == Outcome.ACCEPTED
    p = stand_in.accepted[0].body["personalizations"][0]
    assert p["cc"] == [{"email": "other@example.com"}]


def test_attachments_non_ascii_and_threading_headers(stand_in, sendgrid_backend):
    pdf = bytes(range(256)) * 8
    batch = OutgoingBatch(
        from_addr="Programm Komitee <program@conference.example>",
        reply_to="Doe; Jane <jane@conference.example>",
        subject="Re: Ihr Vortrag, -name-",
        text="Hallo -name-",
        headers={"In-Reply-To": "<q-1@mail.example>", "X-Note": "Grüße"},
        attachments=[OutgoingAttachment("Zeitplan.pdf", "application/pdf", pdf)],
        recipients=[Recipient(to=["Zoë, Dr. <zoe@example.com>"], substitutions={"-name-": "Zoë"})],
    )
    [result] = sendgrid_backend().send(batch)
    assert result.outcome == Outcome.ACCEPTED
    body = stand_in.accepted[0].body
    assert body["attachments"][0]["filename"] == "Zeitplan.pdf"
    assert body["reply_to"] == {"email": "jane@conference.example", "name": "Doe Jane"}
    assert body["headers"]["In-Reply-To"] == "<q-1@mail.example>"
    assert body["headers"]["X-Note"] == "=?utf-8?b?R3LDvMOfZQ==?="
    [copy] = stand_in.received_by("zoe@example.com")
    assert copy.name == "Zoë Dr."
    assert copy.subject == "Re: Ihr Vortrag, Zoë"


def test_what_sendgrid_sends_matches_the_rendered_message(stand_in, sendgrid_backend):
    from helpdesk.outbound.backends import render_for_recipient

    batch = make_batch(3)
    sendgrid_backend().send(batch)
    for i, recipient in enumerate(batch.recipients):
        rendered = render_for_recipient(batch, recipient)
        [copy] = stand_in.received_by(f"person{i}@example.com")
        assert copy.subject == rendered["Subject"]
        assert copy.text == rendered.get_body(("plain",)).get_content()
        assert copy.html == rendered.get_body(("html",)).get_content().rstrip("\n")


def test_planned_size_is_the_size_sent(stand_in, sendgrid_backend):
    batch = make_batch(50, html="<p>Grüße -name-</p>" * 30)
    sendgrid_backend().send(batch)
    shared = shared_fields(batch)
    entries = [(i, *personalization(r)) for i, r in enumerate(batch.recipients)]
    [planned], _ = plan_requests(shared, entries)
    assert planned.size == len(json.dumps(planned.body(shared))) == stand_in.accepted[0].size


def test_plan_splits_by_body_size():
    batch = make_batch(30)
    shared = shared_fields(batch)
    entries = [(i, *personalization(r)) for i, r in enumerate(batch.recipients)]
    whole = len(json.dumps({"personalizations": [e for _, e, _ in entries], **shared}))
    requests, refused = plan_requests(shared, entries, max_body_bytes=whole // 3)
    assert refused == {}
    assert len(requests) >= 3
    assert [i for r in requests for i in r.indices] == list(range(30))
    assert all(len(json.dumps(r.body(shared))) == r.size <= whole // 3 for r in requests)


@pytest.mark.timeout(60)
def test_a_batch_over_30_mb_is_split_and_accepted(stand_in, sendgrid_backend):
    attachment = OutgoingAttachment("proceedings.pdf", "application/pdf", b"\x00" * 15_000_000)
    batch = make_batch(1000, attachments=[attachment])
    for recipient in batch.recipients:
        recipient.headers["X-Padding"] = "p" * 12_000
    results = sendgrid_backend().send(batch)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert len(stand_in.accepted) == 2
    assert all(a.size <= MAX_BODY_BYTES for a in stand_in.accepted)
    assert sum(len(a.body["personalizations"]) for a in stand_in.accepted) == 1000


def test_shared_content_over_the_limit_is_refused_without_a_request(stand_in, sendgrid_backend):
    attachment = OutgoingAttachment("huge.bin", "application/octet-stream", b"\x00" * 1000)
    results = sendgrid_backend(max_body_bytes=1000).send(make_batch(2, attachments=[attachment]))
    assert [r.outcome for r in results] == [Outcome.PERMANENT] * 2
    assert "over the 1000 limit" in results[0].error
    assert stand_in.attempts == 0


def test_sendgrid_specific_limits_fail_only_the_copies_concerned(stand_in, sendgrid_backend):
    batch = make_batch(3)
    batch.recipients[1].custom_args["blob"] = "x" * 10_000
    results = sendgrid_backend().send(batch)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED]
    assert "custom_args are over 10000 bytes" in results[1].error
    too_many = make_batch(1, categories=[f"c{i}" for i in range(11)])
    [result] = sendgrid_backend().send(too_many)
    assert result.outcome == Outcome.PERMANENT
    assert "categories" in result.error
