"""The one seam between outbound mail and whatever carries it: the types every backend shares.

A batch is one content sent to many recipients (a newsletter batch, or one reply). Each
recipient gets its own copy, with its own substitutions and headers, and each gets its own
:class:`RecipientResult`, so the caller can record exactly what happened to whom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass
class OutgoingAttachment:
    """A file attached to every copy of a mail."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Recipient:
    """One copy of a mail: who receives it, and what is particular to them.

    Addresses are formatted (``"Name <a@b>"`` or a bare ``a@b``). ``substitutions`` map a
    tag such as ``-name-`` to its value in subject, text and html, as SendGrid's
    personalization substitutions do; ``custom_args`` carry our ids back in provider events.
    """

    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    substitutions: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)


@dataclass
class OutgoingBatch:
    """One content for many recipients; ``headers`` are shared, a recipient's own win."""

    from_addr: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[OutgoingAttachment] = field(default_factory=list)
    recipients: list[Recipient] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


class Outcome(StrEnum):
    """What became of one recipient's copy.

    ACCEPTED: the provider took it. TEMPORARY: it did not, and trying again later may work.
    PERMANENT: it did not, and trying again will not help. UNCERTAIN: the copy left us but
    the answer was lost, so it may or may not have been taken; resending risks a duplicate.
    """

    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNCERTAIN = "uncertain"


@dataclass
class RecipientResult:
    """The outcome for ``batch.recipients[index]``; ``provider_id`` is set when accepted."""

    index: int
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None


class MailBackend(Protocol):
    """Sends batches; returns one result per recipient, in recipient order.

    ``max_recipients_per_batch`` is the batch size callers should aim for; a backend sends
    larger batches too (SendGrid splits them into several requests).
    """

    name: str
    max_recipients_per_batch: int

    def send(self, batch: OutgoingBatch) -> list[RecipientResult]:
        """Hand every recipient's copy to the provider and say what became of each."""
        ...


def same_outcome(
    indices: Iterable[int], outcome: Outcome, error: str | None, provider_id: str | None = None
) -> list[RecipientResult]:
    """One result per index, all alike (a whole request refused, a connection lost)."""
    return [RecipientResult(i, outcome, provider_id, error) for i in indices]
