"""The SendGrid stand-in itself: it refuses what the real API refuses, as the API does."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpdesk.outbound.backends import Outcome
from helpdesk.outbound.backends.sendgrid import SendGridBackend
from tests.outbound.conftest import make_batch
from tests.support.sendgrid_server import API_KEY

ROOT = Path(__file__).resolve().parents[2]

VALID = {
    "personalizations": [
        {"to": [{"email": "a@example.com", "name": "A"}], "custom_args": {"delivery_id": "1"}}
    ],
    "from": {"email": "office@conference.example", "name": "Office"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<p>Hi</p>"}],
}


def call(url: str, data: bytes | None, *, key: str | None = API_KEY, method: str = "POST"):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), error.headers


def post(stand_in, body, **kwargs):
    status, raw, headers = call(f"{stand_in.url}/v3/mail/send", json.dumps(body).encode(), **kwargs)
    return status, (json.loads(raw) if raw else None), headers


def test_a_valid_request_is_accepted_with_an_empty_body_and_a_message_id(stand_in):
    status, body, headers = post(stand_in, VALID)
    assert (status, body) == (202, None)
    assert headers["X-Message-Id"] == stand_in.accepted[0].message_id
    [copy_] = stand_in.recipients_snapshot()
    assert (copy_.address, copy_.custom_args, copy_.text) == (
        "a@example.com",
        {"delivery_id": "1"},
        "Hi",
    )


@pytest.mark.parametrize("key", [None, "SG.wrong"])
def test_a_missing_or_wrong_key_is_401(stand_in, key):
    status, body, _ = post(stand_in, VALID, key=key)
    assert status == 401
    assert "authorization grant" in body["errors"][0]["message"]
    assert stand_in.accepted == []


def _with(change):
    body = copy.deepcopy(VALID)
    change(body)
    return body


def _many(count, per=1):
    return [{"to": [{"email": f"r{i}-{j}@example.com"} for j in range(per)]} for i in range(count)]


INVALID = {
    "no personalizations": (lambda b: b.pop("personalizations"), "personalizations"),
    "empty personalizations": (lambda b: b.update(personalizations=[]), "personalizations"),
    "1001 personalizations": (
        lambda b: b.update(personalizations=_many(1001)),
        "personalizations",
    ),
    "1001 recipients": (lambda b: b.update(personalizations=_many(1, 1001)), "personalizations"),
    "repeated address": (
        lambda b: b["personalizations"].append({"to": [{"email": "A@example.com"}]}),
        "personalizations.1.to.0.email",
    ),
    "no to": (lambda b: b["personalizations"][0].pop("to"), "personalizations.0.to"),
    "bad address": (
        lambda b: b["personalizations"][0]["to"][0].update(email="nope"),
        "personalizations.0.to.0.email",
    ),
    "comma in a to name": (
        lambda b: b["personalizations"][0]["to"][0].update(name="Doe, Jane"),
        "personalizations.0.to.0.name",
    ),
    "semicolon in the from name": (lambda b: b["from"].update(name="A;B"), "from.name"),
    "comma in the reply-to name": (
        lambda b: b.update(reply_to={"email": "r@example.com", "name": "R, S"}),
        "reply_to.name",
    ),
    "no from": (lambda b: b.pop("from"), "from"),
    "custom_args not strings": (
        lambda b: b["personalizations"][0]["custom_args"].update(delivery_id=1),
        "personalizations.0.custom_args.delivery_id",
    ),
    "custom_args too large": (
        lambda b: b["personalizations"][0]["custom_args"].update(blob="x" * 10_000),
        "personalizations.0.custom_args",
    ),
    "html before text": (lambda b: b["content"].reverse(), "content"),
    "no content": (lambda b: b.pop("content"), "content"),
    "empty content value": (lambda b: b["content"][0].update(value=""), "content.0.value"),
    "no subject": (lambda b: b.pop("subject"), "subject"),
    "reserved header": (
        lambda b: b["personalizations"][0].update(headers={"Reply-To": "x@example.com"}),
        "personalizations.0.headers.Reply-To",
    ),
    "eleven categories": (lambda b: b.update(categories=[str(i) for i in range(11)]), "categories"),
    "attachment not base64": (
        lambda b: b.update(attachments=[{"content": "not base64!", "filename": "a.txt"}]),
        "attachments.0.content",
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_requests_are_400_naming_the_field(stand_in, case):
    change, field = INVALID[case]
    status, body, _ = post(stand_in, _with(change))
    assert status == 400
    assert field in [error["field"] for error in body["errors"]]
    assert all(set(error) == {"message", "field", "help"} for error in body["errors"])
    assert stand_in.accepted == []


def test_subject_in_every_personalization_is_enough(stand_in):
    body = _with(lambda b: (b.pop("subject"), b["personalizations"][0].update(subject="Own")))
    assert post(stand_in, body)[0] == 202
    assert stand_in.recipients_snapshot()[0].subject == "Own"


def test_malformed_json_is_400(stand_in):
    status, raw, _ = call(f"{stand_in.url}/v3/mail/send", b"{not json")
    assert status == 400
    assert json.loads(raw)["errors"][0]["message"] == "Bad Request"


def test_a_body_over_30_mb_is_413(stand_in):
    big = _with(lambda b: b["content"][0].update(value="x" * (30 * 1024 * 1024)))
    status, _body, _ = post(stand_in, big)
    assert status == 413
    assert stand_in.accepted == []


def test_unknown_paths_are_404(stand_in):
    assert call(f"{stand_in.url}/v3/other", b"{}")[0] == 404
    assert call(f"{stand_in.url}/nothing", None, method="GET")[0] == 404


def test_rate_limit_answers_carry_the_rate_limit_headers(stand_in):
    status, _raw, _ = call(
        f"{stand_in.url}/_standin/faults",
        json.dumps({"fault": "rate_limit", "retry_after": 9}).encode(),
    )
    assert status == 200
    status, _, headers = post(stand_in, VALID)
    assert status == 429
    assert headers["Retry-After"] == "9"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > 0


def test_runs_as_its_own_process_with_a_control_api():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sendgrid_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        backend = SendGridBackend(API_KEY, host=url, timeout=5)
        results = backend.send(make_batch(5))
        assert {r.outcome for r in results} == {Outcome.ACCEPTED}
        status, raw, _ = call(f"{url}/_standin/recipients", None, method="GET")
        assert status == 200
        recipients = json.loads(raw)
        assert [r["custom_args"]["delivery_id"] for r in recipients] == ["0", "1", "2", "3", "4"]
        assert recipients[2]["subject"] == "Hello Person 2"
        status, raw, _ = call(f"{url}/_standin/summary", None, method="GET")
        assert (status, json.loads(raw)["accepted_requests"]) == (200, 1)
        assert call(f"{url}/_standin/reset", b"{}")[0] == 200
        status, raw, _ = call(f"{url}/_standin/summary", None, method="GET")
        assert (status, json.loads(raw)["recipients"]) == (200, 0)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    assert process.returncode == 0
