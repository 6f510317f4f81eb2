"""OAuth 2.0 access tokens for IMAP logins (Google Workspace turns password login off).

A :class:`TokenProvider` trades a long-lived refresh token for short-lived access tokens
at the provider's token endpoint (RFC 6749 section 6) and refreshes them shortly before
they expire. :func:`xoauth2_response` builds the SASL XOAUTH2 initial client response
that carries the token to the IMAP server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

log = logging.getLogger(__name__)

# Refresh this long before the provider's expiry so a token never dies mid-login.
REFRESH_MARGIN = 60.0
# Used when the endpoint omits expires_in (it is only RECOMMENDED by RFC 6749).
DEFAULT_LIFETIME = 3600.0
REQUEST_TIMEOUT = 15.0


@dataclass
class OAuth2Config:
    """An OAuth client and the refresh token it was granted for one mailbox."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL

    def __post_init__(self) -> None:
        for name in ("client_id", "client_secret", "refresh_token"):
            if not getattr(self, name):
                raise ValueError(f"oauth2 {name} is empty")
        if urlsplit(self.token_url).scheme not in ("https", "http"):
            raise ValueError(f"oauth2 token_url {self.token_url!r} is not an http(s) URL")


class TokenError(Exception):
    """The token endpoint refused to issue an access token, or could not be reached."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status


def xoauth2_response(username: str, access_token: str) -> bytes:
    """The SASL XOAUTH2 initial client response for ``username`` and ``access_token``."""
    if "\x01" in username or "\x01" in access_token:
        raise ValueError("XOAUTH2 user and token may not contain \\x01")
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()


def parse_token_response(body: bytes, *, now: float) -> tuple[str, float]:
    """``(access_token, expires_at)`` from a token endpoint's JSON answer."""
    try:
        data = json.loads(body)
    except ValueError:
        raise TokenError("token endpoint answered with something that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise TokenError("token endpoint answer has no access_token")
    lifetime = data.get("expires_in", DEFAULT_LIFETIME)
    try:
        lifetime = float(lifetime)
    except (TypeError, ValueError):
        raise TokenError(f"token endpoint gave a bad expires_in: {lifetime!r}") from None
    return data["access_token"], now + lifetime


def describe_refusal(status: int, body: bytes) -> tuple[str, str | None]:
    """A readable reason, and the OAuth ``error`` code, from a refused token request."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        detail = data.get("error_description")
        reason = f"{data['error']} ({detail})" if detail else data["error"]
        return reason, data["error"]
    return f"HTTP {status}", None


class TokenProvider:
    """Access tokens for one OAuth2Config, refreshed before they expire; thread-safe."""

    def __init__(
        self,
        config: OAuth2Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = REFRESH_MARGIN,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.config = config
        self._clock = clock
        self._margin = refresh_margin
        self._timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """A token valid for at least the refresh margin; refreshes when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._token, self._expires_at = self._refresh()
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it), so the next call refreshes."""
        with self._lock:
            self._token = None

    def _refresh(self) -> tuple[str, float]:
        config = self.config
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "refresh_token": config.refresh_token,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in OAuth2Config
            config.token_url,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        started = self._clock()
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as error:
            reason, code = describe_refusal(error.code, error.read())
            raise TokenError(
                f"token endpoint {config.token_url} refused to refresh the access token "
                f"for client {config.client_id}: {reason}",
                error=code,
                status=error.code,
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TokenError(
                f"could not reach token endpoint {config.token_url}: {reason}"
            ) from None
        token, expires_at = parse_token_response(body, now=started)
        log.info("refreshed access token for client %s", config.client_id)
        return token, expires_at
