"""Verification of SendGrid's Signed Event Webhook.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 over SHA-256 and sends the
base64 DER signature and the timestamp in two headers. The verification key is shown in
SendGrid's settings as base64 DER (SubjectPublicKeyInfo). A valid signature on an old
timestamp is refused too, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_TOLERANCE = 600  # seconds

_PEM_ARMOUR = re.compile(r"-----(BEGIN|END) PUBLIC KEY-----")


def load_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from base64 DER (PEM armour tolerated); raise ValueError."""
    text = "".join(_PEM_ARMOUR.sub("", key).split())
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    try:
        public_key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("is not a DER-encoded public key") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise ValueError("is not an ECDSA P-256 public key")
    return public_key


class WebhookVerifier:
    """Checks signed event webhook requests against one configured public key."""

    def __init__(
        self, public_key: str | ec.EllipticCurvePublicKey, tolerance: int = DEFAULT_TOLERANCE
    ) -> None:
        self.public_key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        self.tolerance = tolerance

    def verify(
        self, body: bytes, signature: str | None, timestamp: str | None, *, now: float | None = None
    ) -> bool:
        """Whether ``signature`` signs ``timestamp + body`` and the timestamp is recent."""
        if not signature or not timestamp:
            log.info("webhook request without signature or timestamp")
            return False
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            log.info("webhook timestamp %r is not an integer", timestamp)
            return False
        current = time.time() if now is None else now
        if abs(current - sent_at) > self.tolerance:
            log.info("webhook timestamp %d is %.0f s off", sent_at, current - sent_at)
            return False
        try:
            der_signature = base64.b64decode(signature.strip(), validate=True)
        except (binascii.Error, ValueError):
            log.info("webhook signature is not base64")
            return False
        try:
            self.public_key.verify(
                der_signature, timestamp.strip().encode("ascii") + body, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            log.info("webhook signature does not match")
            return False
        return True

    def verify_request(
        self, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> bool:
        """Like :meth:`verify`, reading signature and timestamp from request headers."""
        return self.verify(
            body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), now=now
        )


def verify_signature(
    public_key: str | ec.EllipticCurvePublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """One-off check of a signed webhook request (see :class:`WebhookVerifier`)."""
    return WebhookVerifier(public_key, tolerance).verify(body, signature, timestamp, now=now)
