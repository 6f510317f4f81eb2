"""Damaged mail never breaks parsing: each copy parses or is rejected as not mail."""

from __future__ import annotations

import pytest

from helpdesk.inbound.quotes import split_html_reply, split_reply
from helpdesk.sanitize import block_remote_images, sanitize_html
from tests.support.corpus import mail_files
from tests.support.html_safety import unsafe_constructs
from tests.support.mutate import mutations
from tests.support.parsing import parse_or_reason

SAMPLES = [path.read_bytes() for path in mail_files() if path.stat().st_size < 100_000]


@pytest.mark.parametrize("seed", range(4))
def test_damaged_mail_parses_or_is_not_mail(seed: int) -> None:
    for raw in mutations(SAMPLES, count=150, seed=seed):
        mail = parse_or_reason(raw)
        if isinstance(mail, str):
            assert mail  # NotMail always says why
            continue
        mail.text.encode("utf-8")
        split_reply(mail.text)
        if mail.html is not None:
            assert unsafe_constructs(block_remote_images(sanitize_html(mail.html))) == []
            split_html_reply(mail.html)
