"""Pure parts of the fetcher: configuration checks, after-import parsing, batching, back-off."""

from __future__ import annotations

import random

import pytest

from helpdesk.inbound.fetch import plan_batches
from helpdesk.inbound.mailbox import (
    AfterImport,
    MailboxConfig,
    MemoryCheckpoint,
    parse_after_import,
)
from helpdesk.inbound.oauth2 import OAuth2Config
from helpdesk.inbound.watch import backoff_delay


def config(**overrides) -> MailboxConfig:
    values = {
        "name": "info",
        "host": "imap.example.org",
        "port": 993,
        "tls": "implicit",
        "username": "info@example.org",
        "password": "pw",
    }
    values.update(overrides)
    return MailboxConfig(**values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("leave", AfterImport("leave")),
        ("flag", AfterImport("flag", flag=r"\Flagged")),
        ("FLAG", AfterImport("flag", flag=r"\Flagged")),
        ("flag:$Helpdesk", AfterImport("flag", flag="$Helpdesk")),
        ("move:Archive/Helpdesk", AfterImport("move", folder="Archive/Helpdesk")),
        (" move: Imported ", AfterImport("move", folder="Imported")),
    ],
)
def test_parse_after_import_accepts_the_documented_forms(text, expected):
    assert parse_after_import(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delete", "is not leave"),
        ("move", "needs a folder"),
        ("move:", "needs a folder"),
        ("flag:two words", "not a usable IMAP keyword"),
        ("flag:\\", "not a usable IMAP keyword"),
        (r"flag:\Seen", "not a marker"),
        (r"flag:\Deleted", "not a marker"),
        ("leave:now", "is not leave"),
    ],
)
def test_parse_after_import_rejects_everything_else(text, message):
    with pytest.raises(ValueError, match=message):
        parse_after_import(text)


def test_only_flag_and_move_need_a_writable_folder():
    assert not parse_after_import("leave").writes
    assert parse_after_import("flag").writes
    assert parse_after_import("move:X").writes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": " "}, "name is empty"),
        ({"host": ""}, "host is empty"),
        ({"port": 0}, "port 0"),
        ({"tls": "ssl"}, "tls 'ssl'"),
        ({"username": ""}, "username is empty"),
        ({"password": None}, "exactly one of password and oauth2"),
        ({"oauth2": OAuth2Config("id", "secret", "refresh")}, "exactly one"),
        ({"folders": []}, "at least one folder"),
        ({"folders": ["INBOX", "INBOX"]}, "twice"),
        ({"after_import": "burn"}, "mailbox 'info': after_import 'burn'"),
        ({"after_import": "move:INBOX"}, "cannot move imported mail into a folder it fetches"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_mailbox_config_refuses_unusable_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_mailbox_config_keeps_the_password_out_of_its_repr():
    assert "pw" not in repr(config(password="pw"))


def test_memory_checkpoint_keeps_one_watermark_per_folder():
    checkpoint = MemoryCheckpoint()
    assert checkpoint.get("info", "INBOX") is None
    checkpoint.advance("info", "INBOX", 7, 10)
    checkpoint.advance("info", "Lists", 8, 3)
    checkpoint.advance("info", "INBOX", 9, 0)
    assert checkpoint.get("info", "INBOX") == (9, 0)
    assert checkpoint.get("info", "Lists") == (8, 3)
    assert checkpoint.get("other", "INBOX") is None


def test_plan_batches_cuts_by_count():
    assert list(plan_batches([1, 2, 3, 4, 5], {}, 2, 10**9)) == [[1, 2], [3, 4], [5]]


def test_plan_batches_cuts_by_bytes_and_sends_a_large_mail_alone():
    sizes = {1: 400, 2: 400, 3: 5000, 4: 100, 5: 100}
    assert list(plan_batches([1, 2, 3, 4, 5], sizes, 100, 1000)) == [[1, 2], [3], [4, 5]]


def test_plan_batches_keeps_uid_order_and_handles_nothing():
    assert list(plan_batches([], {}, 10, 10)) == []
    assert list(plan_batches([9, 3, 5], {}, 10, 10)) == [[9, 3, 5]]
    with pytest.raises(ValueError, match="positive"):
        list(plan_batches([1], {}, 0, 10))


def test_backoff_grows_exponentially_within_jittered_bounds_and_is_capped():
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0), (500, 60.0)]:
        delays = [backoff_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        # Jitter spreads retries out instead of repeating one value.
        assert max(delays) - min(delays) > ceiling / 4


def test_backoff_counts_attempts_from_one():
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=1, cap=1, rng=random.Random(0))
