"""Signed links: each purpose reads only its own tokens, and altered tokens fail."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from helpdesk.outbound import tokens


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def test_unsubscribe_round_trip(ctx):
    token = tokens.unsubscribe_token(7, 3, 11, 42)
    assert tokens.read_unsubscribe_token(token) == tokens.UnsubscribeClaim(7, 3, 11, 42)


def test_altered_token_is_rejected(ctx):
    token = tokens.unsubscribe_token(7, 3, 11, 42)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(tokens.InvalidToken):
        tokens.read_unsubscribe_token(flipped)


def test_forged_with_another_key_is_rejected(ctx):
    forged = URLSafeTimedSerializer("not the key", salt="helpdesk.unsubscribe").dumps(
        {"s": 1, "l": 1, "c": None, "d": None}
    )
    with pytest.raises(tokens.InvalidToken):
        tokens.read_unsubscribe_token(forged)


def test_purposes_do_not_mix(ctx):
    with pytest.raises(tokens.InvalidToken):
        tokens.read_unsubscribe_token(tokens.preferences_token(7))
    with pytest.raises(tokens.InvalidToken):
        tokens.read_preferences_token(tokens.confirm_token(7))
    assert tokens.read_preferences_token(tokens.preferences_token(7)) == 7
    assert tokens.read_confirm_token(tokens.confirm_token(9)) == 9
