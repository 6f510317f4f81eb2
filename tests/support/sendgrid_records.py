"""What the SendGrid stand-in records: accepted requests and each recipient's copy."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for tag in sorted(substitutions, key=len, reverse=True):
        text = text.replace(tag, substitutions[tag])
    return text


@dataclass
class AcceptedRequest:
    """A request answered 202."""

    message_id: str
    body: dict[str, Any]
    size: int
    # When the stand-in accepted it (time.time()): hand-off latency and sending rates.
    received_at: float = field(default_factory=time.time)


@dataclass
class ReceivedRecipient:
    """One address of an accepted request, and what it would receive."""

    address: str
    name: str | None
    kind: str  # to, cc or bcc
    request: AcceptedRequest
    position: int  # index of its personalization in the request

    @property
    def _personalization(self) -> dict[str, Any]:
        return self.request.body["personalizations"][self.position]

    @property
    def custom_args(self) -> dict[str, str]:
        """Message-level custom_args merged with the personalization's (which win)."""
        return {
            **self.request.body.get("custom_args", {}),
            **self._personalization.get("custom_args", {}),
        }

    @property
    def headers(self) -> dict[str, str]:
        """Message-level headers merged with the personalization's (which win)."""
        return {**self.request.body.get("headers", {}), **self._personalization.get("headers", {})}

    @property
    def substitutions(self) -> dict[str, str]:
        """The personalization's substitutions."""
        return dict(self._personalization.get("substitutions", {}))

    @property
    def subject(self) -> str:
        """The subject after substitution."""
        raw = self._personalization.get("subject", self.request.body.get("subject", ""))
        return _substitute(raw, self.substitutions)

    def content(self, content_type: str) -> str | None:
        """The body part of ``content_type`` after substitution, or None."""
        for part in self.request.body.get("content", []):
            if part["type"] == content_type:
                return _substitute(part["value"], self.substitutions)
        return None

    @property
    def text(self) -> str | None:
        """The text/plain part after substitution."""
        return self.content("text/plain")

    @property
    def html(self) -> str | None:
        """The text/html part after substitution."""
        return self.content("text/html")

    @property
    def sg_message_id(self) -> str:
        """The per-recipient id SendGrid's events carry (X-Message-Id plus a suffix)."""
        return f"{self.request.message_id}.filterdrecv-1-{self.position}-{self.kind}.0"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for the control API)."""
        return {
            "address": self.address,
            "name": self.name,
            "kind": self.kind,
            "message_id": self.request.message_id,
            "received_at": self.request.received_at,
            "custom_args": self.custom_args,
            "headers": self.headers,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
        }
