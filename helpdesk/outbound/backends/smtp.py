"""SMTP backend: one connection per batch, one mail transaction per recipient.

Replies are classified as Mailman does: 2xx accepted, 4xx temporary, 5xx permanent. A
connection that breaks before the message data was sent is temporary; one that breaks
after the data left (while waiting for the final reply) is uncertain, because the server
may have queued the mail, and sending it again may deliver it twice.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from helpdesk.config import ConfigError
from helpdesk.outbound.backends.interface import (
    Outcome,
    OutgoingBatch,
    RecipientResult,
    same_outcome,
)
from helpdesk.outbound.backends.mime import (
    SMTP_POLICY,
    envelope_recipients,
    render_for_recipient,
)
from helpdesk.outbound.backends.validation import parse_address, sort_out

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, parsed from ``HELPDESK_SMTP_URL``."""

    host: str
    port: int
    security: str  # "none", "starttls" or "tls"
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://[user:pass@]host[:port]``."""
        parts = urlsplit(url.strip())
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError("HELPDESK_SMTP_URL", f"unsupported scheme {parts.scheme!r}")
        if not parts.hostname:
            raise ConfigError("HELPDESK_SMTP_URL", "names no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ConfigError("HELPDESK_SMTP_URL", "has an invalid port") from None
        security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username and password is None:
            raise ConfigError("HELPDESK_SMTP_URL", "names a user but no password")
        return cls(parts.hostname, port, security, username, password)


class _ConnectionLost(Exception):
    """The connection broke during one copy's transaction."""

    def __init__(self, outcome: Outcome, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def outcome_for_code(code: int) -> Outcome:
    """2xx accepted, 5xx permanent; 4xx and anything odd temporary."""
    if 200 <= code < 300:
        return Outcome.ACCEPTED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    return Outcome.TEMPORARY


def _stuffed(data: bytes) -> bytes:
    # RFC 5321 4.5.2: a line starting with "." gets a second one; the data ends "CRLF.CRLF".
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpBackend:
    """Sends through an SMTP relay; the Message-ID (without brackets) is the provider id."""

    name = "smtp"
    max_recipients_per_batch = 100

    def __init__(
        self,
        server: SmtpServer | str,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        max_reconnects: int = 3,
    ) -> None:
        self.server = SmtpServer.from_url(server) if isinstance(server, str) else server
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.local_hostname = local_hostname
        self.max_reconnects = max_reconnects

    def send(self, batch: OutgoingBatch) -> list[RecipientResult]:
        """Send each copy over one connection, reconnecting (a few times) if it breaks."""
        sendable, results = sort_out(batch)
        if not sendable:
            return results
        sender = parse_address(batch.from_addr)[1]
        connection: smtplib.SMTP | None = None
        connections = 0
        try:
            for position, index in enumerate(sendable):
                if connection is None:
                    rest = sendable[position:]
                    if connections > self.max_reconnects:
                        error = f"connection to {self._where()} lost {connections} times"
                        results += same_outcome(rest, Outcome.TEMPORARY, error)
                        break
                    connections += 1
                    try:
                        connection = self._connect()
                    except (smtplib.SMTPException, OSError) as exc:
                        outcome, error = self._connect_failure(exc)
                        log.warning("%s", error)
                        results += same_outcome(rest, outcome, error)
                        break
                try:
                    results.append(self._send_copy(connection, batch, index, sender))
                except _ConnectionLost as lost:
                    log.warning("copy %d: %s", index, lost.error)
                    results.append(RecipientResult(index, lost.outcome, None, lost.error))
                    self._close(connection)
                    connection = None
        finally:
            if connection is not None:
                self._quit(connection)
        return sorted(results, key=lambda r: r.index)

    # -- connection ----------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self.ssl_context,
            )
        else:
            connection = smtplib.SMTP(
                server.host, server.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            connection.ehlo()
            if server.security == "starttls":
                # starttls() raises when the server does not offer it: never fall back to
                # sending credentials and mail in the clear.
                connection.starttls(context=self.ssl_context)
                connection.ehlo()
            if server.username:
                connection.login(server.username, server.password or "")
        except BaseException:
            self._close(connection)
            raise
        return connection

    def _connect_failure(self, exc: BaseException) -> tuple[Outcome, str]:
        where = self._where()
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            # A server without STARTTLS or AUTH will not grow it by itself: configuration.
            return Outcome.PERMANENT, f"{where}: {exc}"
        if isinstance(exc, smtplib.SMTPResponseException):
            auth = isinstance(exc, smtplib.SMTPAuthenticationError)
            what = "authentication failed" if auth else "refused"
            reply = _text(exc.smtp_error)
            return outcome_for_code(exc.smtp_code), f"{where} {what}: {exc.smtp_code} {reply}"
        return Outcome.TEMPORARY, f"cannot connect to {where}: {exc!r}"

    @staticmethod
    def _close(connection: smtplib.SMTP) -> None:
        with contextlib.suppress(OSError):
            connection.close()

    def _quit(self, connection: smtplib.SMTP) -> None:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self._close(connection)

    def _reset(self, connection: smtplib.SMTP, code: int) -> None:
        """End a failed transaction; a 421 reply means the server is closing on us."""
        if code == 421:
            raise _ConnectionLost(Outcome.TEMPORARY, "server closing the connection (421)")
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError) as exc:
            raise _ConnectionLost(Outcome.TEMPORARY, f"RSET failed: {exc!r}") from exc

    # -- one copy --------------------------------------------------------------------------

    def _send_copy(
        self, connection: smtplib.SMTP, batch: OutgoingBatch, index: int, sender: str
    ) -> RecipientResult:
        recipient = batch.recipients[index]
        message = render_for_recipient(batch, recipient)
        message_id = str(message["Message-ID"]).strip().strip("<>")
        payload = _stuffed(message.as_bytes(policy=SMTP_POLICY))
        addresses = envelope_recipients(recipient)
        data_left = False
        try:
            code, reply = connection.mail(sender)
            if code != 250:
                outcome, error = outcome_for_code(code), f"MAIL FROM refused: {code} {_text(reply)}"
                self._reset_after(connection, code, outcome, error)
                return RecipientResult(index, outcome, None, error)
            refused: dict[str, tuple[int, str]] = {}
            for address in addresses:
                code, reply = connection.rcpt(address)
                if code not in (250, 251):
                    refused[address] = (code, _text(reply))
                    if code == 421:
                        break
            if len(refused) == len(addresses) or any(c == 421 for c, _ in refused.values()):
                codes = [c for c, _ in refused.values()]
                outcome = (
                    Outcome.PERMANENT if all(500 <= c < 600 for c in codes) else Outcome.TEMPORARY
                )
                error = "recipient refused: " + _describe(refused)
                self._reset_after(connection, 421 if 421 in codes else codes[-1], outcome, error)
                return RecipientResult(index, outcome, None, error)
            code, reply = connection.docmd("DATA")
            if code != 354:
                outcome, error = outcome_for_code(code), f"DATA refused: {code} {_text(reply)}"
                self._reset_after(connection, code, outcome, error)
                return RecipientResult(index, outcome, None, error)
            connection.send(payload)
            data_left = True
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if data_left:
                error = f"connection lost after the message was sent, outcome unknown: {exc!r}"
                raise _ConnectionLost(Outcome.UNCERTAIN, error) from exc
            raise _ConnectionLost(Outcome.TEMPORARY, f"connection lost: {exc!r}") from exc
        if code != 250:
            outcome, error = outcome_for_code(code), f"message refused: {code} {_text(reply)}"
            if code == 421:
                raise _ConnectionLost(outcome, error)
            return RecipientResult(index, outcome, None, error)
        error = f"accepted, but refused for {_describe(refused)}" if refused else None
        return RecipientResult(index, Outcome.ACCEPTED, message_id, error)

    def _reset_after(
        self, connection: smtplib.SMTP, code: int, outcome: Outcome, error: str
    ) -> None:
        """End a refused transaction; if the connection goes with it, keep this copy's reply."""
        try:
            self._reset(connection, code)
        except _ConnectionLost as lost:
            raise _ConnectionLost(outcome, f"{error}; then {lost.error}") from lost


def _describe(refused: dict[str, tuple[int, str]]) -> str:
    return "; ".join(f"{address}: {code} {reply}" for address, (code, reply) in refused.items())
