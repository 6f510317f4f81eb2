"""Discord webhooks: checking a committee's webhook URL and posting a message to it.

A webhook URL carries its own secret (the token after the id), so it is stored
encrypted and never shown back in full. Only Discord's webhook URLs are accepted, and
posts go to ``HELPDESK_DISCORD_API_URL`` + ``/webhooks/<id>/<token>``, never to a host an
admin typed: a webhook field cannot be used to make the server call somewhere else.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from flask import current_app

from helpdesk.errors import ServiceError

log = logging.getLogger(__name__)

_WEBHOOK = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
    r"(?P<id>\d{5,30})/(?P<token>[A-Za-z0-9_-]{20,200})/?$"
)
TIMEOUT_SECONDS = 10
ATTEMPTS = 3
MAX_CONTENT = 2000  # Discord's limit for a message's content
MAX_RETRY_AFTER = 30.0


class DiscordError(Exception):
    """Discord did not take the message (after the retries)."""


@dataclass(frozen=True)
class Webhook:
    """The id and token of a Discord webhook."""

    id: str
    token: str

    @property
    def masked(self) -> str:
        """The URL with the token hidden, for showing in the admin pages."""
        return f"https://discord.com/api/webhooks/{self.id}/{self.token[:4]}…"


def parse_webhook_url(url: str) -> Webhook:
    """Check that ``url`` is a Discord webhook URL; ServiceError naming the field otherwise."""
    match = _WEBHOOK.match(url.strip())
    if match is None:
        raise ServiceError(
            "not a Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>)",
            field="discord_webhook",
        )
    return Webhook(match["id"], match["token"])


def post(webhook: Webhook, content: str) -> None:
    """Post ``content`` to the webhook; retries server errors, timeouts and rate limits.

    Raises DiscordError when the last attempt fails too, so that the job's own retry
    policy (and its failure record) takes over.
    """
    base = current_app.config["HELPDESK_DISCORD_API_URL"].rstrip("/")
    url = f"{base}/webhooks/{webhook.id}/{webhook.token}"
    body = json.dumps(
        {
            "content": content[:MAX_CONTENT],
            # Ticket text must never ping @everyone, roles or people.
            "allowed_mentions": {"parse": []},
        }
    ).encode()
    last_error = ""
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - the scheme comes from our settings
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "helpdesk"},
        )
        wait = 0.5 * attempt
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                response.read()
            return
        except urllib.error.HTTPError as error:
            error.read()
            last_error = f"HTTP {error.code}"
            if error.code == 429:
                wait = _retry_after(error.headers.get("Retry-After"), wait)
            elif error.code < 500:
                # A deleted webhook (404) or a refused message (400): retrying cannot help.
                raise DiscordError(f"Discord refused the message: {last_error}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = str(getattr(error, "reason", error))
        log.warning("Discord post failed (attempt %d of %d): %s", attempt, ATTEMPTS, last_error)
        if attempt < ATTEMPTS:
            time.sleep(wait)
    raise DiscordError(f"Discord did not take the message: {last_error}")


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(max(float(value or default), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return default
