"""One logged-in IMAP connection, as the fetcher needs it (built on imapclient).

:class:`ImapSession` connects (implicit TLS, STARTTLS or plain), logs in with a password
or SASL XOAUTH2, selects folders, lists new UIDs above a watermark, fetches messages with
``BODY.PEEK[]`` (so reading never sets ``\\Seen``), waits for new mail with IDLE (or by
polling when the server has no IDLE) and applies the after-import action.

Every failure leaves as one of three exceptions, so callers can decide what to retry:
:class:`ImapConnectionError` (network, TLS, protocol: reconnect), :class:`ImapLoginError`
(credentials or token refused) and :class:`ImapError` (the server refused a command).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from imapclient import DELETED, IMAPClient, SocketTimeout
from imapclient import exceptions as imap_errors

from helpdesk.inbound.mailbox import AfterImport, MailboxConfig, is_loopback
from helpdesk.inbound.oauth2 import TokenError, TokenProvider, xoauth2_response

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
# UIDs asked for in one SEARCH: keeps the answer far below imaplib's 1 MB line limit.
SEARCH_WINDOW = 50_000
# UIDs named in one FETCH command: keeps the command line below servers' limits (64 KB).
MAX_UIDS_PER_COMMAND = 1_000
# How often a wait checks its stop event while the server is quiet.
STOP_CHECK_INTERVAL = 0.5


class ImapError(Exception):
    """The IMAP server refused a command, or the mailbox cannot be used as configured."""


class ImapConnectionError(ImapError):
    """The connection failed or broke (network, TLS, protocol); reconnecting may help."""


class ImapLoginError(ImapError):
    """The server (or the OAuth token endpoint) refused the mailbox's credentials."""


class FolderStatus(NamedTuple):
    """What SELECT tells about a folder."""

    uidvalidity: int
    uidnext: int | None  # servers may omit it


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn imaplib/imapclient/socket failures into this module's exceptions."""
    try:
        yield
    except (imaplib.IMAP4.abort, imap_errors.ProtocolError, OSError, EOFError) as error:
        raise ImapConnectionError(f"{what}: connection error: {error}") from error
    except imap_errors.LoginError as error:
        raise ImapLoginError(f"{what}: {error}") from error
    except imaplib.IMAP4.error as error:
        raise ImapError(f"{what}: {error}") from error


class _XOAuth2:
    """SASL XOAUTH2 conversation: send the token, then read the server's error, if any."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.server_error: str | None = None
        self._sent = False

    def __call__(self, challenge: bytes) -> bytes:
        if not self._sent:
            self._sent = True
            return self.response
        # A failure comes as a challenge holding a JSON status; the client must answer
        # with an empty response before the server sends its tagged NO.
        self.server_error = challenge.decode(errors="replace")
        return b""


def uid_sequence(uids: Sequence[int]) -> list[int]:
    """UIDs as the sorted, duplicate-free list IMAP commands are built from."""
    return sorted(set(uids))


class ImapSession:
    """One connection to one mailbox. Not thread-safe: one thread drives one session."""

    def __init__(self, config: MailboxConfig, *, tokens: TokenProvider | None = None) -> None:
        self.config = config
        if config.oauth2 is not None and tokens is None:
            tokens = TokenProvider(config.oauth2)
        self.tokens = tokens
        self.client: IMAPClient | None = None
        self.folder: str | None = None
        self.status: FolderStatus | None = None
        self._capabilities: frozenset[str] = frozenset()

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.logout()

    # -- connecting ----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls == "none":
            return None
        return ssl.create_default_context(cafile=self.config.ca_file)

    def connect(self) -> None:
        """Open the connection, secure it as configured and log in."""
        config = self.config
        where = f"{config.name} ({config.host}:{config.port})"
        if config.tls == "none" and not is_loopback(config.host):
            log.warning("mailbox %s sends its credentials unencrypted to %s", config.name, where)
        context = self._ssl_context()
        timeout = SocketTimeout(connect=min(CONNECT_TIMEOUT, config.timeout), read=config.timeout)
        try:
            with _translated(f"connecting to {where}"):
                self.client = IMAPClient(
                    config.host,
                    port=config.port,
                    ssl=config.tls == "implicit",
                    ssl_context=context,
                    timeout=timeout,
                )
                if config.tls == "starttls":
                    if not self.client.has_capability("STARTTLS"):
                        raise ImapConnectionError(f"{where} does not offer STARTTLS")
                    self.client.starttls(context)
            self._login(where)
            with _translated(f"asking {where} for its capabilities"):
                self._capabilities = frozenset(
                    c.decode().upper() for c in self.client.capabilities()
                )
        except BaseException:
            self.close()
            raise
        log.info("logged in to mailbox %s as %s", config.name, config.username)

    def _login(self, where: str) -> None:
        assert self.client is not None
        config = self.config
        if self.tokens is None:
            assert config.password is not None
            with _translated(f"logging in to {where} as {config.username}"):
                self.client.login(config.username, config.password)
            return
        if not self.client.has_capability("AUTH=XOAUTH2"):
            raise ImapLoginError(f"{where} does not offer XOAUTH2 login")
        try:
            token = self.tokens.access_token()
        except TokenError as error:
            raise ImapLoginError(f"mailbox {config.name}: {error}") from error
        mechanism = _XOAuth2(xoauth2_response(config.username, token))
        try:
            with _translated(f"logging in to {where} as {config.username} with XOAUTH2"):
                self.client.sasl_login("XOAUTH2", mechanism)
        except ImapLoginError as error:
            # The token may have been revoked early: fetch a fresh one next time.
            self.tokens.invalidate()
            if mechanism.server_error:
                raise ImapLoginError(f"{error} (server said {mechanism.server_error})") from error
            raise

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities after login, upper-case."""
        return self._capabilities

    @property
    def supports_idle(self) -> bool:
        """Whether waiting for mail can use IDLE rather than polling."""
        return "IDLE" in self._capabilities

    def _require_client(self) -> IMAPClient:
        if self.client is None:
            raise ImapConnectionError(f"mailbox {self.config.name}: not connected")
        return self.client

    # -- folders -------------------------------------------------------------------------

    def list_folders(self) -> list[str]:
        """Names of every folder the account can see."""
        client = self._require_client()
        with _translated(f"listing folders of {self.config.name}"):
            return sorted(name for _flags, _sep, name in client.list_folders())

    def select(self, folder: str, *, readonly: bool = False) -> FolderStatus:
        """Open ``folder`` (EXAMINE when ``readonly``) and return its UIDVALIDITY and UIDNEXT."""
        client = self._require_client()
        self.folder = self.status = None
        with _translated(f"opening folder {folder!r} of {self.config.name}"):
            response = client.select_folder(folder, readonly=readonly)
        if b"UIDVALIDITY" not in response:
            raise ImapError(f"folder {folder!r} of {self.config.name} reports no UIDVALIDITY")
        self.folder = folder
        self.status = FolderStatus(response[b"UIDVALIDITY"], response.get(b"UIDNEXT"))
        return self.status

    def _require_folder(self) -> tuple[IMAPClient, str]:
        client = self._require_client()
        if self.folder is None:
            raise ImapError(f"mailbox {self.config.name}: no folder is selected")
        return client, self.folder

    # -- reading -------------------------------------------------------------------------

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs above ``after_uid`` in the selected folder, ascending (one search window)."""
        client, folder = self._require_folder()
        start = after_uid + 1
        uidnext = self.status.uidnext if self.status else None
        with _translated(f"searching folder {folder!r} of {self.config.name}"):
            # Large gaps (mail deleted long ago) are crossed window by window.
            while uidnext is not None and start + SEARCH_WINDOW < uidnext:
                found = client.search(["UID", f"{start}:{start + SEARCH_WINDOW - 1}"])
                if found:
                    return uid_sequence(found)
                start += SEARCH_WINDOW
            # "N:*" always matches the newest message, even when its UID is below N.
            found = client.search(["UID", f"{start}:*"])
        return [uid for uid in uid_sequence(found) if uid > after_uid]

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each of ``uids`` still in the folder."""
        client, folder = self._require_folder()
        ordered = uid_sequence(uids)
        sizes: dict[int, int] = {}
        with _translated(f"reading message sizes in {folder!r} of {self.config.name}"):
            for i in range(0, len(ordered), MAX_UIDS_PER_COMMAND):
                chunk = ordered[i : i + MAX_UIDS_PER_COMMAND]
                for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items():
                    if b"RFC822.SIZE" in data:
                        sizes[uid] = int(data[b"RFC822.SIZE"])
        return sizes

    def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The raw bytes of each of ``uids`` (BODY.PEEK[]: \\Seen is left as it was).

        Messages expunged meanwhile are simply absent from the result.
        """
        client, folder = self._require_folder()
        ordered = uid_sequence(uids)
        if len(ordered) > MAX_UIDS_PER_COMMAND:
            raise ValueError(f"fetch at most {MAX_UIDS_PER_COMMAND} messages at once")
        with _translated(f"fetching {len(ordered)} message(s) from {folder!r}"):
            response = client.fetch(ordered, ["BODY.PEEK[]"])
        mails: dict[int, bytes] = {}
        for uid, data in response.items():
            raw = data.get(b"BODY[]")
            if isinstance(raw, bytes):
                mails[uid] = raw
        return mails

    # -- waiting -------------------------------------------------------------------------

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait up to ``timeout`` seconds for new mail in the selected folder.

        Uses IDLE when offered and returns True as soon as the server announces a
        message; without IDLE it waits out the timeout (the poll interval) and returns
        True so the caller looks again. Returns early, False, when ``stop`` is set.
        """
        client, folder = self._require_folder()
        stop = stop or threading.Event()
        if not self.supports_idle:
            return not stop.wait(timeout)
        deadline = time.monotonic() + timeout
        arrived = False
        with _translated(f"waiting for mail in {folder!r} of {self.config.name}"):
            client.idle()
            # A server that finds new mail as IDLE starts sends it right after "+ idling";
            # imaplib may already have buffered that line, where polling the socket
            # would never see it.
            arrived = _input_buffered(client, self.config.timeout)
            while not arrived and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                slice_ = min(remaining, STOP_CHECK_INTERVAL)
                started = time.monotonic()
                responses = client.idle_check(timeout=slice_)
                early = time.monotonic() - started < slice_ * 0.9
                _check_not_closed(client, responses, returned_early=early)
                arrived = any(_announces_mail(r) for r in responses)
            _text, late = client.idle_done()
        return arrived or any(_announces_mail(r) for r in late)

    # -- after import --------------------------------------------------------------------

    def apply_after_import(self, uids: Sequence[int], action: AfterImport | None = None) -> None:
        """Apply the after-import action to ``uids`` of the selected folder."""
        action = action or self.config.action
        ordered = uid_sequence(uids)
        if action.action == "leave" or not ordered:
            return
        client, folder = self._require_folder()
        for i in range(0, len(ordered), MAX_UIDS_PER_COMMAND):
            chunk = ordered[i : i + MAX_UIDS_PER_COMMAND]
            with _translated(f"after-import {action.action} in {folder!r} of {self.config.name}"):
                if action.action == "flag":
                    assert action.flag is not None
                    client.add_flags(chunk, [action.flag], silent=True)
                else:
                    assert action.folder is not None
                    self._move(client, chunk, action.folder)

    def _move(self, client: IMAPClient, uids: list[int], target: str) -> None:
        if "MOVE" in self._capabilities:
            client.move(uids, target)
            return
        if "UIDPLUS" not in self._capabilities:
            # A plain EXPUNGE would also remove mail that other clients marked \Deleted.
            raise ImapError(
                f"{self.config.name}: the server offers neither MOVE nor UIDPLUS, so mail "
                f"cannot be moved to {target!r} safely; use after_import flag instead"
            )
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        client.uid_expunge(uids)

    # -- closing -------------------------------------------------------------------------

    def logout(self) -> None:
        """Log out politely; a connection that is already broken is just closed."""
        client, self.client = self.client, None
        self.folder = self.status = None
        if client is None:
            return
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):
            with contextlib.suppress(Exception):
                client.shutdown()

    def close(self) -> None:
        """Drop the connection without a word to the server (after a failure)."""
        client, self.client = self.client, None
        self.folder = self.status = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.socket().shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client.shutdown()


def _input_buffered(client: IMAPClient, timeout: float) -> bool:
    """Whether imaplib holds unread server output in its buffer (or on the socket)."""
    sock = client.socket()
    sock.setblocking(False)
    try:
        # peek() returns buffered bytes without reading; when the buffer is empty its one
        # read from the non-blocking socket returns whatever has arrived, or nothing.
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def _check_not_closed(client: IMAPClient, responses: list, *, returned_early: bool) -> None:
    """Raise when the server said BYE or hung up while we were in IDLE.

    imapclient's idle_check reads until no data is left and cannot tell that apart from
    the peer closing, so an empty, early return is checked against the socket itself.
    """
    for response in responses:
        if response and response[0] == b"BYE":
            text = b" ".join(part for part in response[1:] if isinstance(part, bytes))
            raise ImapConnectionError(
                f"server closed the connection: {text.decode(errors='replace')}"
            )
    if responses or not returned_early:
        return
    hangup = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)
    poller = select.poll()
    poller.register(client.socket().fileno(), hangup)
    if any(events & hangup for _fd, events in poller.poll(0)):
        raise ImapConnectionError("server closed the connection")


def _announces_mail(response: tuple) -> bool:
    """Whether an untagged response during IDLE says a message arrived."""
    return len(response) >= 2 and response[1] == b"EXISTS"
