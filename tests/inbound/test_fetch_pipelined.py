"""The fetcher with a handler that takes batches in two steps (submit_batch, make_durable):
the next batch is fetched while the handler works, and nothing else changes."""

from __future__ import annotations

import threading

import pytest

from helpdesk.inbound import imap
from helpdesk.inbound.fetch import MailboxFetcher, fetch_once
from helpdesk.inbound.imap import ImapConnectionError
from tests.inbound.conftest import make_mail


class RecordingCheckpoint:
    """A checkpoint that adds each advance to the handler's event list."""

    def __init__(self, events: list[tuple]) -> None:
        self.events = events
        self.marks: dict[tuple[str, str], tuple[int, int]] = {}

    def get(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        return self.marks.get((mailbox, folder))

    def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        if uid:
            self.events.append(("advance", uid))
        self.marks[(mailbox, folder)] = (uidvalidity, uid)


def test_the_next_batch_is_fetched_while_the_handler_works_and_order_is_kept(
    dovecot, imap_user, make_config, pipelined_recorder, monkeypatch
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(10)])
    events = pipelined_recorder.events
    second_fetched = threading.Event()
    real_fetch = imap.ImapSession.fetch

    def fetch(self, batch):
        found = real_fetch(self, batch)
        events.append(("fetch", list(batch)))
        if batch[0] == uids[4]:
            second_fetched.set()
        return found

    monkeypatch.setattr(imap.ImapSession, "fetch", fetch)
    overlapped = []
    # The first batch is held until the second has been fetched: without the overlap
    # this would wait out its timeout.
    pipelined_recorder.on_mail = lambda mail: (
        overlapped.append(second_fetched.wait(10)) if mail.uid == uids[0] else None
    )
    checkpoint = RecordingCheckpoint(events)

    assert fetch_once(make_config(), checkpoint, pipelined_recorder, batch_size=4) == 10

    assert overlapped == [True]
    assert pipelined_recorder.uids == uids
    b1, b2, b3 = uids[:4], uids[4:8], uids[8:]
    assert events == [
        ("fetch", b1),
        ("submit", b1),
        ("fetch", b2),
        ("submit", b2),  # at once: the handler has work queued when the first ends
        ("durable",),  # the first batch is durable before the watermark passes it
        ("advance", b1[-1]),
        ("fetch", b3),
        ("submit", b3),
        ("durable",),
        ("advance", b2[-1]),
        ("durable",),
        ("advance", b3[-1]),
    ]


def test_a_stop_ends_the_pass_after_the_batch_in_hand_and_drops_the_one_fetched(
    dovecot, imap_user, make_config, checkpoint, pipelined_recorder, monkeypatch
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(9)])
    stop = threading.Event()
    pipelined_recorder.on_mail = lambda mail: stop.set() if mail.uid == uids[2] else None
    real_fetch = imap.ImapSession.fetch

    def fetch(self, batch):
        found = real_fetch(self, batch)
        if batch[0] == uids[4]:
            # The stop comes while the second batch is being fetched.
            assert stop.wait(10)
        return found

    monkeypatch.setattr(imap.ImapSession, "fetch", fetch)
    with MailboxFetcher(make_config(), checkpoint, pipelined_recorder, batch_size=4) as fetcher:
        assert fetcher.fetch_all(stop) == 4

    assert pipelined_recorder.uids == uids[:4]
    assert ("submit", uids[4:8]) not in pipelined_recorder.events
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[3]


def test_a_stop_after_the_next_batch_was_submitted_completes_both(
    dovecot, imap_user, make_config, checkpoint, pipelined_recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(9)])
    stop = threading.Event()
    submitted = threading.Event()
    real_submit = pipelined_recorder.submit_batch

    def submit_batch(mails):
        handled = real_submit(mails)
        if mails[0].uid == uids[4]:
            submitted.set()
        return handled

    pipelined_recorder.submit_batch = submit_batch
    # The first batch's handler waits until the second batch is submitted, then stops.
    pipelined_recorder.on_mail = lambda mail: (
        (submitted.wait(10), stop.set()) if mail.uid == uids[0] else None
    )
    with MailboxFetcher(make_config(), checkpoint, pipelined_recorder, batch_size=4) as fetcher:
        assert fetcher.fetch_all(stop) == 8

    assert pipelined_recorder.uids == uids[:8]
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[7]


def test_a_connection_lost_fetching_the_next_batch_still_completes_the_one_in_hand(
    dovecot, imap_user, make_config, checkpoint, pipelined_recorder, monkeypatch
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(10)])
    real_fetch = imap.ImapSession.fetch
    cut = []

    def fetch(self, batch):
        if batch[0] == uids[4] and not cut:
            cut.append(batch[0])
            dovecot.kick(imap_user)
        return real_fetch(self, batch)

    monkeypatch.setattr(imap.ImapSession, "fetch", fetch)
    config = make_config(after_import="flag")
    with MailboxFetcher(config, checkpoint, pipelined_recorder, batch_size=4) as fetcher:
        with pytest.raises(ImapConnectionError):
            fetcher.fetch_all()
        # The batch in hand was handled, made durable and passed; its flags wait for
        # the next connection.
        assert pipelined_recorder.uids == uids[:4]
        assert checkpoint.get(imap_user, "INBOX")[1] == uids[3]
        assert pipelined_recorder.events[-1] == ("durable",)
        fetcher.close(polite=False)

        assert fetcher.fetch_all() == 6

    assert pipelined_recorder.counts() == {uid: 1 for uid in uids}
    assert all(r"\Flagged" in dovecot.flags(imap_user, uid) for uid in uids)
