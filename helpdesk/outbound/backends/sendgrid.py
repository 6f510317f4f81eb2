"""SendGrid backend: v3 Mail Send through the ``sendgrid`` library, with careful retries.

What may be retried depends on whether the request could have been accepted:

* 429 (after Retry-After), 5xx, and connection failures while connecting or sending the
  request are retried with exponential backoff and jitter, a bounded number of times;
* a timeout or a dropped connection after the request was sent is UNCERTAIN and never
  retried: SendGrid may have queued the mail, and resending is how duplicates happen;
* 400, 401, 403, 413 and other 4xx are PERMANENT, with the API's error messages. A 400
  naming individual personalizations fails only those recipients; the rest are sent again
  without them (nothing in a refused request was queued, so that is safe).

The library (python-http-client over urllib) raises ``URLError`` for failures while
connecting or writing the request, and the underlying ``OSError`` or ``HTTPException``
for failures while waiting for or reading the answer; that difference is what tells a
request that never left from one whose answer was lost. The request is made the way the
library makes it (same URL, headers, urllib opener and exceptions), except that the
opener is built once per process instead of once per request.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

from python_http_client.client import Response
from python_http_client.exceptions import HTTPError, handle_error
from sendgrid import SendGridAPIClient

from helpdesk.outbound.backends.interface import (
    Outcome,
    OutgoingBatch,
    RecipientResult,
    same_outcome,
)
from helpdesk.outbound.backends.sendgrid_request import (
    MAX_BODY_BYTES,
    PlannedRequest,
    personalization,
    plan_requests,
    shared_fields,
)
from helpdesk.outbound.backends.validation import InvalidMail, sort_out

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.sendgrid.com"
_PERSONALIZATION_FIELD = re.compile(r"^personalizations(?:\[|\.)(\d+)")
_MAX_REFUSAL_ROUNDS = 3


class _Answer:
    """How one request ended: the outcome, and for a 400 the personalizations it names."""

    def __init__(
        self,
        outcome: Outcome,
        *,
        provider_id: str | None = None,
        error: str | None = None,
        refused: dict[int, str] | None = None,
    ) -> None:
        self.outcome = outcome
        self.provider_id = provider_id
        self.error = error
        self.refused = refused or {}


def _error_messages(error: HTTPError) -> tuple[str, dict[int, str]]:
    """The API's messages joined, and those naming a personalization by position."""
    try:
        errors = error.to_dict.get("errors") or []
    except (ValueError, AttributeError, UnicodeDecodeError):
        body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else ""
        return body[:500] or str(error.reason), {}
    messages: list[str] = []
    by_position: dict[int, str] = {}
    unplaced = False
    for entry in errors:
        if not isinstance(entry, dict):
            continue
        message, field = str(entry.get("message") or ""), entry.get("field")
        messages.append(f"{field}: {message}" if field else message)
        match = _PERSONALIZATION_FIELD.match(field) if isinstance(field, str) else None
        if match:
            position = int(match.group(1))
            by_position[position] = "; ".join(filter(None, [by_position.get(position), message]))
        else:
            unplaced = True
    # Only when every error names a personalization can the others go out without them.
    return "; ".join(messages) or str(error.reason), ({} if unplaced else by_position)


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or X-RateLimit-Reset."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


@cache
def _opener() -> urllib.request.OpenerDirector:
    # python-http-client builds an opener for every request: a dozen handlers and the
    # proxy settings read from the environment, a seventh of a transactional delivery
    # job's work. An opener keeps no state between requests; each opens its connection.
    return urllib.request.build_opener()


class SendGridBackend:
    """Sends through SendGrid's v3 Mail Send API; X-Message-Id is the provider id."""

    name = "sendgrid"
    max_recipients_per_batch = 1000

    def __init__(
        self,
        api_key: str,
        *,
        host: str = DEFAULT_HOST,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 60.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        mail_send = self.client.client.mail.send
        self._url = mail_send._build_url(None)
        self._headers = {**mail_send.request_headers, "Content-Type": "application/json"}
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.max_body_bytes = max_body_bytes
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret

    def send(self, batch: OutgoingBatch) -> list[RecipientResult]:
        """Send the batch in as few requests as the API's limits allow."""
        sendable, results = sort_out(batch)
        if not sendable:
            return results
        try:
            shared = shared_fields(batch)
        except InvalidMail as error:
            results += same_outcome(sendable, Outcome.PERMANENT, str(error))
            return sorted(results, key=lambda r: r.index)
        entries = []
        for index in sendable:
            try:
                entry, addresses = personalization(batch.recipients[index])
            except InvalidMail as error:
                results.append(RecipientResult(index, Outcome.PERMANENT, None, str(error)))
            else:
                entries.append((index, entry, addresses))
        requests, refused = plan_requests(shared, entries, max_body_bytes=self.max_body_bytes)
        results += [RecipientResult(i, Outcome.PERMANENT, None, e) for i, e in refused.items()]
        for request in requests:
            results += self._send_request(shared, request)
        return sorted(results, key=lambda r: r.index)

    def _send_request(
        self, shared: dict[str, Any], request: PlannedRequest
    ) -> list[RecipientResult]:
        results: list[RecipientResult] = []
        for _ in range(_MAX_REFUSAL_ROUNDS):
            answer = self._post(request.body(shared), len(request.indices))
            if answer.outcome != Outcome.PERMANENT or not answer.refused:
                return results + same_outcome(
                    request.indices, answer.outcome, answer.error, answer.provider_id
                )
            named = {p: m for p, m in answer.refused.items() if p < len(request.indices)}
            kept = [p for p in range(len(request.indices)) if p not in named]
            results += [
                RecipientResult(request.indices[p], Outcome.PERMANENT, None, m)
                for p, m in named.items()
            ]
            if not named or not kept:
                rest = [request.indices[p] for p in kept]
                return results + same_outcome(rest, Outcome.PERMANENT, answer.error)
            log.warning(
                "SendGrid refused %d of %d personalizations; sending the rest again",
                len(named),
                len(request.indices),
            )
            request = PlannedRequest(
                indices=[request.indices[p] for p in kept],
                personalizations=[request.personalizations[p] for p in kept],
            )
        return results + same_outcome(
            request.indices, Outcome.PERMANENT, "SendGrid kept refusing personalizations"
        )

    def _mail_send(self, body: dict[str, Any]) -> Response:
        """POST the body to /v3/mail/send as ``client.mail.send.post`` does."""
        request = urllib.request.Request(  # noqa: S310 - http(s), checked by the settings
            self._url, data=json.dumps(body).encode(), headers=self._headers, method="POST"
        )
        try:
            return Response(_opener().open(request, timeout=self.timeout))
        except urllib.error.HTTPError as error:
            raise handle_error(error) from None

    def _backoff(self, attempt: int) -> float:
        # Full jitter: workers that failed together do not retry together.
        return self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def _post(self, body: dict[str, Any], count: int) -> _Answer:
        """Post one request, retrying only what cannot have been accepted."""
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            delay: float | None
            try:
                response = self._mail_send(body)
            except HTTPError as error:
                status = error.status_code
                if status == 429:
                    last_error = "429 rate limited by SendGrid"
                    delay = _retry_after(error.headers, time.time())
                    if delay is not None and delay > self.max_retry_after:
                        return _Answer(
                            Outcome.TEMPORARY, error=f"{last_error}; retry after {delay:.0f} s"
                        )
                    if delay is None:
                        delay = self._backoff(attempt)
                    else:
                        delay += self.rng.uniform(0, min(1.0, self.backoff_base))
                elif status >= 500:
                    messages, _ = _error_messages(error)
                    last_error = f"{status} from SendGrid: {messages}"
                    delay = self._backoff(attempt)
                else:
                    messages, refused = _error_messages(error)
                    log.error("SendGrid refused a request of %d: %s %s", count, status, messages)
                    return _Answer(
                        Outcome.PERMANENT,
                        error=f"{status} refused by SendGrid: {messages}",
                        refused=refused if status == 400 else None,
                    )
            except urllib.error.URLError as error:
                # Raised while connecting or writing the request: it never arrived whole.
                last_error = f"cannot reach SendGrid: {error.reason!r}"
                delay = self._backoff(attempt)
            except (OSError, http.client.HTTPException) as error:
                log.error("SendGrid answer lost for a request of %d: %r", count, error)
                return _Answer(
                    Outcome.UNCERTAIN,
                    error=f"request sent but its answer was lost, outcome unknown: {error!r}",
                )
            else:
                message_id = response.headers.get("X-Message-Id")
                if response.status_code != 202:
                    log.warning("SendGrid answered %d instead of 202", response.status_code)
                return _Answer(Outcome.ACCEPTED, provider_id=message_id)
            if attempt < self.max_attempts:
                log.warning(
                    "SendGrid attempt %d of %d failed (%s); retrying in %.2f s",
                    attempt,
                    self.max_attempts,
                    last_error,
                    delay,
                )
                self.sleep(delay)
        return _Answer(
            Outcome.TEMPORARY, error=f"{last_error} (after {self.max_attempts} attempts)"
        )
