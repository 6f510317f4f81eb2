"""SendGrid event webhook batches for tests: events as SendGrid posts them, signed.

The key pair is fixed (derived from a public seed), so a test process, a stand-in
running as its own process and the app under test all agree on it; configure the app
with ``WEBHOOK_PUBLIC_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.sendgrid_records import ReceivedRecipient

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# A fixed test key pair, derived from a public seed so every process agrees on it.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SEED = hashlib.sha256(b"helpdesk sendgrid stand-in webhook test key").digest()
WEBHOOK_PRIVATE_KEY = ec.derive_private_key(
    int.from_bytes(_SEED, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
)
WEBHOOK_PUBLIC_KEY = base64.b64encode(
    WEBHOOK_PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode("ascii")

EVENT_TYPES = (
    "processed",
    "delivered",
    "deferred",
    "bounce",
    "dropped",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "open",
    "click",
)
_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "processed": {},
    "delivered": {"response": "250 2.0.0 OK", "ip": "192.0.2.10"},
    "deferred": {"response": "421 4.7.0 try again later", "attempt": "1"},
    "bounce": {
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "bounce_classification": "Invalid Address",
    },
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "spamreport": {},
    "unsubscribe": {},
    "group_unsubscribe": {"asm_group_id": 1},
    "open": {"useragent": "Mozilla/5.0", "ip": "192.0.2.20", "sg_machine_open": False},
    "click": {
        "url": "https://conference.example/",
        "useragent": "Mozilla/5.0",
        "ip": "192.0.2.20",
        "url_offset": {"index": 0, "type": "html"},
    },
}
_BLOCKED = {
    "type": "blocked",
    "status": "5.7.1",
    "reason": "550 5.7.1 Message rejected as spam",
    "bounce_classification": "Reputation",
}


def make_event(recipient: ReceivedRecipient, event: str, **fields: Any) -> dict[str, Any]:
    """An event as SendGrid posts it: ids, address, time, custom_args at the top level.

    ``event="bounce", type="blocked"`` gives a block; other fields override the defaults.
    """
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENT_TYPES)}")
    payload: dict[str, Any] = {
        **recipient.custom_args,
        "email": recipient.address,
        "timestamp": int(time.time()),
        "event": event,
        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
        "sg_message_id": recipient.sg_message_id,
        "smtp-id": f"<{recipient.request.message_id}@stand-in.sendgrid.test>",
    }
    categories = recipient.request.body.get("categories")
    if categories:
        payload["category"] = categories
    defaults = dict(_EVENT_DEFAULTS[event])
    if event == "bounce" and fields.get("type") == "blocked":
        defaults = dict(_BLOCKED)
    payload.update(defaults)
    payload.update(fields)
    return payload


def sign(body: bytes, timestamp: str, private_key: ec.EllipticCurvePrivateKey) -> str:
    """The base64 DER ECDSA P-256 signature of ``timestamp + body``, as SendGrid makes it."""
    signature = private_key.sign(timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def post_events(
    url: str,
    events: list[dict[str, Any]],
    *,
    private_key: ec.EllipticCurvePrivateKey = WEBHOOK_PRIVATE_KEY,
    timestamp: int | None = None,
    timeout: float = 10.0,
) -> int:
    """POST ``events`` as one signed batch to ``url``; returns the HTTP status."""
    body = json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    request = urllib.request.Request(  # noqa: S310 - a test's own loopback URL
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, stamp, private_key),
            TIMESTAMP_HEADER: stamp,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
