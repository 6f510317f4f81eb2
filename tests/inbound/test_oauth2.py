"""Access tokens from a refresh token: the SASL response, refresh timing, refusals."""

from __future__ import annotations

import base64

import pytest

from helpdesk.inbound.oauth2 import (
    DEFAULT_LIFETIME,
    OAuth2Config,
    TokenError,
    TokenProvider,
    describe_refusal,
    parse_token_response,
    xoauth2_response,
)
from tests.support.dovecot import free_port


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_xoauth2_response_is_the_documented_sasl_string():
    response = xoauth2_response("info@conference.test", "ya29.token")
    assert response == b"user=info@conference.test\x01auth=Bearer ya29.token\x01\x01"
    # Google's documentation shows the base64 of exactly this form.
    assert base64.b64decode(base64.b64encode(response)).count(b"\x01") == 3


def test_xoauth2_response_refuses_separator_characters():
    with pytest.raises(ValueError, match="x01"):
        xoauth2_response("a\x01b", "token")


def test_parse_token_response_honours_expires_in_and_defaults_it():
    assert parse_token_response(b'{"access_token": "t", "expires_in": 120}', now=10) == ("t", 130)
    assert parse_token_response(b'{"access_token": "t"}', now=0) == ("t", DEFAULT_LIFETIME)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"token_type": "Bearer"}', "no access_token"),
        (b'{"access_token": "t", "expires_in": "soon"}', "bad expires_in"),
        (b"[]", "no access_token"),
    ],
)
def test_parse_token_response_rejects_malformed_answers(body, message):
    with pytest.raises(TokenError, match=message):
        parse_token_response(body, now=0)


def test_describe_refusal_uses_the_oauth_error_fields():
    body = b'{"error": "invalid_grant", "error_description": "Bad Request"}'
    assert describe_refusal(400, body) == ("invalid_grant (Bad Request)", "invalid_grant")
    assert describe_refusal(401, b'{"error": "invalid_client"}') == (
        "invalid_client",
        "invalid_client",
    )
    assert describe_refusal(502, b"Bad gateway") == ("HTTP 502", None)


def test_oauth2_config_rejects_empty_fields_and_odd_urls():
    with pytest.raises(ValueError, match="client_secret"):
        OAuth2Config("id", "", "refresh")
    with pytest.raises(ValueError, match="not an http"):
        OAuth2Config("id", "secret", "refresh", token_url="file:///etc/passwd")
    assert "secret" not in repr(OAuth2Config("id", "secret", "refresh"))


@pytest.fixture
def granted(oauth2_server) -> OAuth2Config:
    """A client with a valid refresh token."""
    oauth2_server.add_client("token-tests", "s3cret")
    return OAuth2Config(
        "token-tests",
        "s3cret",
        oauth2_server.issue_refresh_token("token-tests", "someone"),
        oauth2_server.token_url,
    )


def test_access_token_is_cached_and_refreshed_before_it_expires(oauth2_server, granted):
    oauth2_server.set_expires_in(600)
    clock = FakeClock()
    tokens = TokenProvider(granted, clock=clock, refresh_margin=60)
    before = oauth2_server.token_requests
    try:
        first = tokens.access_token()
        clock.now += 500  # 100 s left: still more than the margin
        assert tokens.access_token() == first
        assert oauth2_server.token_requests == before + 1

        clock.now += 41  # 59 s left: inside the margin, so it is refreshed
        second = tokens.access_token()
        assert second != first
        assert oauth2_server.token_requests == before + 2
    finally:
        oauth2_server.set_expires_in(3600)


def test_invalidate_forces_a_refresh(oauth2_server, granted):
    tokens = TokenProvider(granted)
    first = tokens.access_token()
    tokens.invalidate()
    assert tokens.access_token() != first


def test_a_revoked_refresh_token_is_a_clear_error(oauth2_server, granted):
    oauth2_server.revoke(granted.refresh_token)
    with pytest.raises(TokenError) as raised:
        TokenProvider(granted).access_token()
    assert raised.value.error == "invalid_grant"
    assert raised.value.status == 400
    message = str(raised.value)
    assert "refused" in message
    assert "Token has been expired or revoked." in message
    assert granted.refresh_token not in message
    assert granted.client_secret not in message


def test_a_wrong_client_secret_is_a_clear_error(oauth2_server, granted):
    wrong = OAuth2Config(granted.client_id, "wrong", granted.refresh_token, granted.token_url)
    with pytest.raises(TokenError, match="invalid_client") as raised:
        TokenProvider(wrong).access_token()
    assert raised.value.status == 401


def test_an_unreachable_token_endpoint_is_a_clear_error(granted):
    closed = OAuth2Config(
        granted.client_id,
        granted.client_secret,
        granted.refresh_token,
        f"http://127.0.0.1:{free_port()}/token",
    )
    with pytest.raises(TokenError, match="could not reach token endpoint"):
        TokenProvider(closed, timeout=2).access_token()
