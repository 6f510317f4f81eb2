"""run_forever against a real Dovecot: IDLE latency, polling, reconnects, broken mailboxes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from helpdesk.inbound.watch import MailboxHealth, run_forever
from tests.inbound.conftest import PASSWORD, make_mail

# Long enough that only IDLE (not a poll) can explain a mail seen within a second or two.
SLOW_POLL = 60.0


class HealthLog:
    """Collects health reports and lets a test wait for one that matches."""

    def __init__(self) -> None:
        self.reports: list[MailboxHealth] = []
        self.changed = threading.Condition()

    def __call__(self, report: MailboxHealth) -> None:
        with self.changed:
            self.reports.append(report)
            self.changed.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> MailboxHealth:
        """The first report (old or new) satisfying ``predicate``; fails after ``timeout``."""
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((r for r in self.reports if predicate(r)), None), timeout
            )
        assert found, f"no matching health report in {timeout} s: {self.reports}"
        return found

    def of(self, mailbox: str) -> list[MailboxHealth]:
        """Reports about ``mailbox`` so far."""
        with self.changed:
            return [r for r in self.reports if r.mailbox == mailbox]


def passes_with_mail(health: HealthLog) -> int:
    """How many successful passes handled at least one mail."""
    return sum(1 for r in health.reports if r.ok and r.handled)


@contextmanager
def watching(configs, checkpoint, handle, **options) -> Iterator[HealthLog]:
    """Run run_forever in a thread for the duration of the block, then stop it."""
    health = HealthLog()
    stop = threading.Event()
    options.setdefault("backoff_base", 0.05)
    options.setdefault("backoff_cap", 0.2)
    thread = threading.Thread(
        target=run_forever, args=(configs, checkpoint, handle, stop, health), kwargs=options
    )
    thread.start()
    try:
        yield health
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "run_forever did not stop"


def test_idle_delivers_a_new_mail_within_about_a_second(
    dovecot, imap_user, make_config, checkpoint, recorder, record_property
):
    config = make_config()
    latencies = []
    with watching(config, checkpoint, recorder, poll_interval=SLOW_POLL) as health:
        report = health.wait_for(lambda r: r.ok)
        assert report.idle is True
        for n in range(3):
            started = time.monotonic()
            uid = dovecot.append(imap_user, make_mail(n))
            assert recorder.wait_for(lambda mails, uid=uid: mails and mails[-1].uid == uid, 10)
            latencies.append(time.monotonic() - started)
            # The pass ends with a report; then the watcher is back in IDLE.
            health.wait_for(lambda _r, n=n: passes_with_mail(health) > n)
    record_property("idle_latencies_s", [round(x, 3) for x in latencies])
    assert max(latencies) < 2.0, latencies


def test_without_idle_new_mail_is_found_by_polling(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    config = make_config(host=dovecot.plain_host)
    with watching(config, checkpoint, recorder, poll_interval=0.2) as health:
        assert health.wait_for(lambda r: r.ok).idle is False
        started = time.monotonic()
        uid = dovecot.append(imap_user, make_mail(1))
        assert recorder.wait_for(lambda mails: [m.uid for m in mails] == [uid], 10)
        assert time.monotonic() - started < 2.0


def test_connections_cut_mid_fetch_resume_without_loss_or_repeats(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(60)])
    kicks = {uids[14], uids[37]}

    def kick_now_and_then(mail):
        if mail.uid in kicks:
            kicks.discard(mail.uid)
            dovecot.kick(imap_user)

    recorder.on_mail = kick_now_and_then
    config = make_config(after_import="flag:$Imported")
    with watching(config, checkpoint, recorder, batch_size=10) as health:
        assert recorder.wait_for(lambda mails: len({m.uid for m in mails}) == 60, 20)
        health.wait_for(lambda r: r.ok and r.consecutive_failures == 0 and r.last_error)
    assert recorder.counts() == {uid: 1 for uid in uids}
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[-1]
    errors = [r.last_error for r in health.of(imap_user) if not r.ok]
    assert len(errors) == 2
    assert all("connection error" in e for e in errors)
    # The after-import flags cut off with the connections were set after reconnecting.
    assert all("$Imported" in dovecot.flags(imap_user, uid) for uid in uids)


def test_a_connection_cut_while_idle_is_reconnected(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    with watching(make_config(), checkpoint, recorder, poll_interval=SLOW_POLL) as health:
        health.wait_for(lambda r: r.ok)
        before = len(dovecot.connections(imap_user))
        dovecot.kick(imap_user)
        uid = dovecot.append(imap_user, make_mail(1))
        assert recorder.wait_for(lambda mails: [m.uid for m in mails] == [uid], 10)
    assert before == 1


def test_a_server_restart_is_survived(dovecot, imap_user, make_config, checkpoint, recorder):
    first = dovecot.append(imap_user, make_mail(1))
    with watching(make_config(), checkpoint, recorder, poll_interval=SLOW_POLL) as health:
        assert recorder.wait_for(lambda mails: len(mails) == 1, 10)
        dovecot.stop()
        try:
            # Reconnecting fails while the server is down, and says so.
            failed = health.wait_for(lambda r: not r.ok and "connecting to" in r.last_error)
            assert failed.lag_seconds > 0
        finally:
            dovecot.start()
        second = dovecot.append(imap_user, make_mail(2))
        assert recorder.wait_for(lambda mails: len(mails) == 2, 10)
    assert recorder.uids == [first, second]


def test_a_failing_handler_is_reported_and_its_mail_retried(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(3)])
    recorder.fail_uids = {uids[1]}
    with watching(make_config(), checkpoint, recorder, poll_interval=SLOW_POLL) as health:
        failed = health.wait_for(lambda r: not r.ok)
        assert f"first UID {uids[1]}" in failed.last_error
        assert failed.handled == 2
        recorder.fail_uids = set()
        health.wait_for(lambda r: r.ok)
    assert recorder.counts()[uids[1]] == 1
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[-1]


def test_a_mail_that_keeps_failing_does_not_hold_up_new_mail(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    stuck = dovecot.append(imap_user, make_mail(1))
    recorder.fail_uids = {stuck}
    config = make_config()
    # A long back-off: only IDLE can explain the new mail arriving quickly.
    with watching(config, checkpoint, recorder, backoff_base=60, backoff_cap=60) as health:
        health.wait_for(lambda r: not r.ok)
        started = time.monotonic()
        uid = dovecot.append(imap_user, make_mail(2))
        assert recorder.wait_for(lambda mails: uid in [m.uid for m in mails], 10)
        assert time.monotonic() - started < 2.0
    # The stuck mail still holds the watermark, so it is offered again later.
    assert checkpoint.get(imap_user, "INBOX")[1] == 0


def test_broken_mailboxes_are_reported_and_do_not_stop_the_others(
    dovecot, imap_user, make_config, oauth_config, oauth2_server, checkpoint, recorder
):
    good = make_config(name="good")
    other_user = f"{imap_user}-oauth"
    dovecot.add_user(other_user, PASSWORD)
    wrong_password = make_config(name="badpassword", password="nope")
    revoked = oauth_config(other_user)
    oauth2_server.revoke(revoked.refresh_token)
    refused_token = make_config(name="badtoken", username=other_user, password=None, oauth2=revoked)

    with watching([good, wrong_password, refused_token], checkpoint, recorder) as health:
        for name in ("badpassword", "badtoken"):
            health.wait_for(lambda r, name=name: r.mailbox == name and r.consecutive_failures >= 2)
        uid = dovecot.append(imap_user, make_mail(1))
        assert recorder.wait_for(lambda mails: [m.uid for m in mails] == [uid], 10)
        health.wait_for(lambda r: r.mailbox == "good" and r.ok)

    assert {m.mailbox for m in recorder.mails} == {"good"}
    password_report = health.of("badpassword")[-1]
    assert not password_report.ok
    assert "AUTHENTICATIONFAILED" in password_report.last_error
    assert password_report.last_success is None
    token_report = health.of("badtoken")[-1]
    assert "invalid_grant" in token_report.last_error
    assert "Token has been expired or revoked." in token_report.last_error


def test_run_forever_refuses_duplicate_mailbox_names(make_config, checkpoint, recorder):
    stop = threading.Event()
    with pytest.raises(ValueError, match="unique"):
        run_forever([make_config(), make_config()], checkpoint, recorder, stop, print)


def test_stop_ends_run_forever_promptly(dovecot, imap_user, make_config, checkpoint, recorder):
    health = HealthLog()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(make_config(), checkpoint, recorder, stop, health),
        kwargs={"idle_timeout": 300.0},
    )
    thread.start()
    health.wait_for(lambda r: r.ok)
    started = time.monotonic()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2.0
    # The IMAP connection was closed on the way out.
    assert dovecot.connections(imap_user) == []
