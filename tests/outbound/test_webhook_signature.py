"""SendGrid's Signed Event Webhook: good, tampered, wrong key, stale; end to end."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpdesk.outbound.webhook_signature import (
    WebhookVerifier,
    load_public_key,
    verify_signature,
)
from tests.outbound.conftest import make_batch
from tests.support.sendgrid_events import WEBHOOK_PRIVATE_KEY
from tests.support.sendgrid_server import EVENT_TYPES, WEBHOOK_PUBLIC_KEY, sign

BODY = b'[{"email":"a@example.com","event":"delivered","delivery_id":"7"}]'


def b64_spki(public_key) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def signed():
    stamp = str(int(time.time()))
    return stamp, sign(BODY, stamp, WEBHOOK_PRIVATE_KEY)


def test_a_good_signature_verifies(signed):
    stamp, signature = signed
    assert WebhookVerifier(WEBHOOK_PUBLIC_KEY).verify(BODY, signature, stamp)
    assert verify_signature(WEBHOOK_PUBLIC_KEY, BODY, signature, stamp)


def test_a_tampered_body_does_not(signed):
    stamp, signature = signed
    assert not WebhookVerifier(WEBHOOK_PUBLIC_KEY).verify(
        BODY.replace(b"7", b"8"), signature, stamp
    )


def test_a_tampered_timestamp_does_not(signed):
    stamp, signature = signed
    assert not WebhookVerifier(WEBHOOK_PUBLIC_KEY).verify(BODY, signature, str(int(stamp) - 1))


def test_another_key_does_not():
    other = ec.generate_private_key(ec.SECP256R1())
    stamp = str(int(time.time()))
    assert not WebhookVerifier(WEBHOOK_PUBLIC_KEY).verify(BODY, sign(BODY, stamp, other), stamp)
    assert WebhookVerifier(b64_spki(other.public_key())).verify(
        BODY, sign(BODY, stamp, other), stamp
    )


def test_stale_and_future_timestamps_are_refused():
    now = time.time()
    verifier = WebhookVerifier(WEBHOOK_PUBLIC_KEY, tolerance=300)
    old = str(int(now) - 301)
    assert not verifier.verify(BODY, sign(BODY, old, WEBHOOK_PRIVATE_KEY), old, now=now)
    future = str(int(now) + 301)
    assert not verifier.verify(BODY, sign(BODY, future, WEBHOOK_PRIVATE_KEY), future, now=now)
    recent = str(int(now) - 299)
    assert verifier.verify(BODY, sign(BODY, recent, WEBHOOK_PRIVATE_KEY), recent, now=now)


@pytest.mark.parametrize(
    ("signature", "stamp"),
    [(None, "1"), ("", "1"), ("sig", None), ("not base64!!", "now"), ("bm9wZQ==", "now")],
)
def test_missing_or_garbled_headers_are_refused(signature, stamp):
    stamp = str(int(time.time())) if stamp == "now" else stamp
    assert not WebhookVerifier(WEBHOOK_PUBLIC_KEY).verify(BODY, signature, stamp)


def test_public_key_forms():
    armoured = f"-----BEGIN PUBLIC KEY-----\n{WEBHOOK_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n"
    assert (
        load_public_key(armoured).public_numbers()
        == load_public_key(WEBHOOK_PUBLIC_KEY).public_numbers()
    )
    with pytest.raises(ValueError, match="not base64"):
        load_public_key("###")
    with pytest.raises(ValueError, match="not a DER"):
        load_public_key(base64.b64encode(b"not a key").decode())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(b64_spki(rsa_key))
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(b64_spki(p384))


class _Receiver(BaseHTTPRequestHandler):
    verifier = WebhookVerifier(WEBHOOK_PUBLIC_KEY)
    batches: list[list[dict]] = []

    def log_message(self, format, *args):
        """Quiet."""

    def do_POST(self):
        """Verify like the app's webhook view will, and keep what verified."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.verifier.verify_request(self.headers, body)
        if ok:
            self.batches.append(json.loads(body))
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver():
    _Receiver.batches = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/sendgrid"
    server.shutdown()
    server.server_close()
    thread.join()


def test_stand_in_posts_signed_events_of_every_kind(stand_in, sendgrid_backend, receiver):
    sendgrid_backend().send(make_batch(2, categories=["newsletter"]))
    copies = stand_in.recipients_snapshot()
    events = [e for kind in EVENT_TYPES for e in stand_in.events_for(copies, kind)]
    events += stand_in.events_for(copies[:1], "bounce", type="blocked")
    assert stand_in.post_events(receiver, events) == 200
    [batch] = _Receiver.batches
    assert [e["event"] for e in batch[::2]] == [*EVENT_TYPES, "bounce"]
    for event in batch:
        assert event["delivery_id"] in {"0", "1"}
        assert event["sg_message_id"].startswith(stand_in.accepted[0].message_id + ".")
        assert {"sg_event_id", "email", "timestamp"} <= set(event)
        assert event["category"] == ["newsletter"]
    bounces = [e for e in batch if e["event"] == "bounce"]
    assert [b["type"] for b in bounces] == ["bounce", "bounce", "blocked"]


def test_events_signed_with_another_key_or_too_old_are_refused(
    stand_in, sendgrid_backend, receiver
):
    sendgrid_backend().send(make_batch(1))
    events = stand_in.events_for(stand_in.recipients_snapshot(), "delivered")
    other = ec.generate_private_key(ec.SECP256R1())
    assert stand_in.post_events(receiver, events, private_key=other) == 403
    assert stand_in.post_events(receiver, events, timestamp=int(time.time()) - 3600) == 403
    assert _Receiver.batches == []
