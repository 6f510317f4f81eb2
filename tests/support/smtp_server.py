"""A real SMTP server (aiosmtpd) on a free loopback port, for testing the SMTP backend.

It speaks plain SMTP, STARTTLS or implicit TLS with a certificate from a throw-away CA,
can require AUTH, records every message it accepts, and can be told to misbehave: answer
a given reply to MAIL, RCPT or DATA, drop the connection at RCPT or right after the data
arrived, or read the data and never answer.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass
class ReceivedMail:
    """One message the server accepted (or read before misbehaving as told)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated: bool
    peer: tuple[str, int] | None = None

    def message(self) -> EmailMessage:
        """The data parsed back with the email package."""
        data = self.data.replace(b"\r\n", b"\n")
        return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Behaviour:
    """What the server answers; addresses are compared in lower case."""

    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    drop_at_rcpt: set[str] = field(default_factory=set)
    drop_after_data_for: set[str] = field(default_factory=set)
    stall_after_data_for: set[str] = field(default_factory=set)
    stall_seconds: float = 10.0


class _Handler:
    def __init__(self, owner: SmtpTestServer) -> None:
        self.owner = owner

    @staticmethod
    def _tls(server: Any, session: Any) -> bool:
        transport = server.transport
        return session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        """MAIL FROM: the planned reply, or accept."""
        reply = self.owner.behaviour.mail_reply
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        """RCPT TO: drop the connection, the planned reply, or accept."""
        behaviour = self.owner.behaviour
        key = address.lower()
        if key in behaviour.drop_at_rcpt:
            server.transport.close()
            return "250 OK"  # written to a closed transport: the client never reads it
        reply = behaviour.rcpt_replies.get(key)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        """The message data arrived: stall, drop, the planned reply, or accept and record."""
        behaviour = self.owner.behaviour
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content or envelope.content,
            tls=self._tls(server, session),
            authenticated=bool(session.authenticated),
            peer=tuple(session.peer) if session.peer else None,
        )
        addresses = {a.lower() for a in envelope.rcpt_tos}
        if addresses & behaviour.stall_after_data_for:
            self.owner._record(mail, accepted=False)
            await asyncio.sleep(behaviour.stall_seconds)
            server.transport.close()
            return "250 OK"
        if addresses & behaviour.drop_after_data_for:
            # The server keeps the message but the client never hears so.
            self.owner._record(mail, accepted=True)
            server.transport.close()
            return "250 OK"
        if behaviour.data_reply:
            self.owner._record(mail, accepted=False)
            return behaviour.data_reply
        self.owner._record(mail, accepted=True)
        return "250 2.0.0 OK queued"


class _Session(Session):
    # aiosmtpd 1.4 itself assigns its deprecated login_data on every successful AUTH,
    # which would trip the test suite's warnings-as-errors in the server thread.
    login_data = None


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)


class _Controller(Controller):
    """aiosmtpd's controller, bound to a free port chosen by the kernel (no race)."""

    def factory(self) -> SMTP:
        """The SMTP protocol object for one connection."""
        return _SMTP(self.handler, **self.SMTP_kwargs)

    async def _bind(self) -> asyncio.AbstractServer:
        server = await super()._create_server()
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self):
        return self._bind()


class SmtpTestServer:
    """Start with :meth:`start`, point an SMTP client at :attr:`url`, :meth:`stop` after."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        users: dict[str, str] | None = None,
        ca: trustme.CA | None = None,
    ) -> None:
        if tls not in (None, "starttls", "implicit"):
            raise ValueError(f"tls must be None, 'starttls' or 'implicit', not {tls!r}")
        self.tls = tls
        self.users = dict(users or {})
        self.ca = ca or (trustme.CA() if tls else None)
        self.behaviour = Behaviour()
        self.received: list[ReceivedMail] = []
        self.refused_data: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: _Controller | None = None

    def _record(self, mail: ReceivedMail, *, accepted: bool) -> None:
        with self._lock:
            (self.received if accepted else self.refused_data).append(mail)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if login in self.users and self.users[login] == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's certificate (and nothing else)."""
        context = ssl.create_default_context()
        if self.ca is not None:
            self.ca.configure_trust(context)
        return context

    def start(self) -> SmtpTestServer:
        """Start serving in a background thread; returns self."""
        kwargs: dict[str, Any] = {"hostname": HOST, "port": 0, "ready_timeout": 10.0}
        if self.ca is not None:
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(HOST, "localhost").configure_cert(server_context)
            if self.tls == "implicit":
                kwargs["ssl_context"] = server_context
            else:
                kwargs["tls_context"] = server_context
                kwargs["require_starttls"] = True
        if self.users:
            kwargs["authenticator"] = self._authenticate
            # aiosmtpd only knows STARTTLS as TLS: with implicit TLS or none, AUTH is offered
            # but not enforced (it rightly warns about requiring passwords in the clear).
            kwargs["auth_required"] = self.tls == "starttls"
            kwargs["auth_require_tls"] = self.tls == "starttls"
        self._controller = _Controller(_Handler(self), **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        assert self._controller is not None, "server not started"
        return self._controller.port

    def url(self, *, credentials: tuple[str, str] | None = None) -> str:
        """An ``HELPDESK_SMTP_URL`` for this server (scheme chosen by its TLS mode)."""
        scheme = {None: "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[self.tls]
        auth = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"{scheme}://{auth}{HOST}:{self.port}"

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
