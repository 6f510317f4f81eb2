"""ImapSession against a real Dovecot: TLS modes, logins, XOAUTH2, waiting, mailbox checks."""

from __future__ import annotations

import threading
import time

import pytest

from helpdesk.inbound import imap
from helpdesk.inbound.imap import ImapConnectionError, ImapLoginError, ImapSession
from helpdesk.inbound.mailbox_check import check_mailbox
from helpdesk.inbound.oauth2 import TokenProvider
from tests.inbound.conftest import make_mail
from tests.support.dovecot import free_port


@pytest.mark.parametrize("tls", ["implicit", "starttls", "none"])
def test_session_logs_in_over_each_tls_mode(dovecot, imap_user, make_config, tls):
    port = dovecot.tls_port if tls == "implicit" else dovecot.port
    config = make_config(tls=tls, port=port, ca_file=dovecot.ca_file)
    with ImapSession(config) as session:
        assert "INBOX" in session.list_folders()
        status = session.select("INBOX")
        assert status.uidvalidity == dovecot.uidvalidity(imap_user)
        assert status.uidnext == 1


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_an_untrusted_certificate_is_refused(dovecot, make_config, tls):
    port = dovecot.tls_port if tls == "implicit" else dovecot.port
    # Without the test CA, the self-signed certificate must not be accepted.
    with pytest.raises(ImapConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        ImapSession(make_config(tls=tls, port=port)).connect()


def test_starttls_on_a_server_without_it_is_a_clear_error(dovecot, make_config):
    # The implicit-TLS port speaks TLS at once; a plain client sees no greeting there.
    config = make_config(tls="starttls", port=dovecot.tls_port, timeout=0.5)
    with pytest.raises(ImapConnectionError):
        ImapSession(config).connect()


def test_a_closed_port_is_a_connection_error(make_config):
    with pytest.raises(ImapConnectionError, match="connecting to"):
        ImapSession(make_config(port=free_port())).connect()


def test_a_wrong_password_is_a_login_error(make_config):
    session = ImapSession(make_config(password="wrong"))
    with pytest.raises(ImapLoginError, match="AUTHENTICATIONFAILED"):
        session.connect()
    assert session.client is None


def test_xoauth2_login_uses_a_refreshed_token(
    dovecot, imap_user, make_config, oauth_config, oauth2_server
):
    config = make_config(password=None, oauth2=oauth_config(imap_user))
    tokens = TokenProvider(config.oauth2)
    before = oauth2_server.token_requests
    for _ in range(2):
        with ImapSession(config, tokens=tokens) as session:
            assert "INBOX" in session.list_folders()
    # The second login reused the cached token.
    assert oauth2_server.token_requests == before + 1


def test_a_revoked_token_is_a_login_error_and_is_not_reused(
    dovecot, imap_user, make_config, oauth_config, oauth2_server
):
    oauth = oauth_config(imap_user)
    config = make_config(password=None, oauth2=oauth)
    tokens = TokenProvider(oauth)
    with ImapSession(config, tokens=tokens):
        pass
    oauth2_server.revoke(oauth.refresh_token)

    with pytest.raises(ImapLoginError, match="401") as raised:
        ImapSession(config, tokens=tokens).connect()
    assert "XOAUTH2" in str(raised.value)
    # The refused token was dropped: the next attempt asks the endpoint, which refuses.
    with pytest.raises(ImapLoginError, match="invalid_grant"):
        ImapSession(config, tokens=tokens).connect()


def test_reading_fetches_raw_bytes_and_skips_vanished_mail(dovecot, imap_user, make_config):
    uids = dovecot.append_many(imap_user, [make_mail(1), make_mail(2)])
    with ImapSession(make_config()) as session:
        session.select("INBOX", readonly=True)
        assert session.new_uids(0) == uids
        assert session.new_uids(uids[-1]) == []
        sizes = session.sizes(uids)
        assert sizes == {uids[0]: len(make_mail(1)), uids[1]: len(make_mail(2))}
        dovecot.set_flags(imap_user, [uids[0]], [r"\Deleted"])
        with dovecot.client(imap_user) as other:
            other.select_folder("INBOX")
            other.expunge()
        assert session.fetch([*uids, 999]) == {uids[1]: make_mail(2)}


def test_wait_returns_when_mail_arrives_during_idle(dovecot, imap_user, make_config):
    with ImapSession(make_config()) as session:
        assert session.supports_idle
        session.select("INBOX", readonly=True)
        appender = threading.Timer(0.2, dovecot.append, (imap_user, make_mail(1)))
        started = time.monotonic()
        appender.start()
        try:
            assert session.wait(timeout=10)
        finally:
            appender.join()
        assert time.monotonic() - started < 5
        # The session is usable again after IDLE.
        assert session.new_uids(0) == [1]


def test_new_uids_crosses_gaps_window_by_window(dovecot, imap_user, make_config, monkeypatch):
    monkeypatch.setattr(imap, "SEARCH_WINDOW", 2)
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(9)])
    # Another client deletes a long run of mail, leaving a gap wider than a window.
    dovecot.set_flags(imap_user, uids[1:6], [r"\Deleted"])
    with dovecot.client(imap_user) as other:
        other.select_folder("INBOX")
        other.expunge()
    with ImapSession(make_config()) as session:
        session.select("INBOX", readonly=True)
        assert session.new_uids(0) == [uids[0]]
        assert session.new_uids(uids[0]) == [uids[6]]
        # The last window is open-ended, so it also finds mail saved after SELECT.
        assert session.new_uids(uids[6]) == [uids[7], uids[8]]
        assert session.new_uids(uids[8]) == []


@pytest.mark.parametrize("tls", ["none", "implicit"])
def test_mail_announced_as_idle_starts_ends_the_wait_at_once(dovecot, imap_user, make_config, tls):
    port = dovecot.tls_port if tls == "implicit" else dovecot.port
    with ImapSession(make_config(tls=tls, port=port, ca_file=dovecot.ca_file)) as session:
        for n in range(3):
            session.select("INBOX", readonly=True)
            # Saved after SELECT: the server announces it together with "+ idling",
            # in the same read that imaplib buffers.
            dovecot.append(imap_user, make_mail(n))
            started = time.monotonic()
            assert session.wait(timeout=10)
            assert time.monotonic() - started < 1


@pytest.mark.parametrize("tls", ["none", "implicit"])
def test_wait_gives_up_at_the_timeout_and_on_stop(dovecot, imap_user, make_config, tls):
    port = dovecot.tls_port if tls == "implicit" else dovecot.port
    with ImapSession(make_config(tls=tls, port=port, ca_file=dovecot.ca_file)) as session:
        session.select("INBOX", readonly=True)
        assert session.wait(timeout=0.3) is False
        stop = threading.Event()
        stop.set()
        started = time.monotonic()
        assert session.wait(timeout=30, stop=stop) is False
        assert time.monotonic() - started < 2


def test_a_kick_during_idle_is_a_connection_error(dovecot, imap_user, make_config):
    with ImapSession(make_config()) as session:
        session.select("INBOX", readonly=True)
        kicker = threading.Timer(0.2, dovecot.kick, (imap_user,))
        kicker.start()
        started = time.monotonic()
        try:
            with pytest.raises(ImapConnectionError):
                session.wait(timeout=30)
        finally:
            kicker.join()
        assert time.monotonic() - started < 5


def test_without_idle_wait_polls(dovecot, imap_user, make_config):
    with ImapSession(make_config(host=dovecot.plain_host)) as session:
        assert not session.supports_idle
        assert "MOVE" not in session.capabilities
        session.select("INBOX", readonly=True)
        started = time.monotonic()
        assert session.wait(timeout=0.2) is True
        assert 0.15 < time.monotonic() - started < 2


def test_check_mailbox_lists_folders_and_names_problems(dovecot, imap_user, make_config):
    dovecot.create_folder(imap_user, "Lists")
    good = check_mailbox(make_config(folders=["INBOX", "Lists"]))
    assert good.ok
    assert good.idle
    assert {"INBOX", "Lists"} <= set(good.folders)

    bad = check_mailbox(make_config(folders=["INBOX", "Nope"], after_import="move:Done"))
    assert not bad.ok
    assert bad.problems == [
        "folder 'Nope' does not exist",
        "move target folder 'Done' does not exist",
    ]


def test_check_mailbox_reports_a_failed_login(make_config):
    with pytest.raises(ImapLoginError):
        check_mailbox(make_config(password="wrong"))
