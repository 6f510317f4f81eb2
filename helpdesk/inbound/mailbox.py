"""What an IMAP mailbox is to the fetcher: its settings, the mails it yields, its checkpoint.

The fetcher owns no database tables. It reads and advances a :class:`Checkpoint` (one
``(uidvalidity, last_uid)`` watermark per mailbox folder) and hands each mail to a
handler; whoever runs it supplies both.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol

from helpdesk.inbound.oauth2 import OAuth2Config

TLS_MODES = ("implicit", "starttls", "none")
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class AfterImport:
    """What to do with a mail on the server once it has been handled."""

    action: Literal["leave", "flag", "move"]
    flag: str | None = None  # the flag or keyword set by "flag"
    folder: str | None = None  # the target folder of "move"

    @property
    def writes(self) -> bool:
        """Whether the folder must be opened read-write (SELECT rather than EXAMINE)."""
        return self.action != "leave"


def parse_after_import(value: str) -> AfterImport:
    r"""Parse ``leave``, ``flag`` (\Flagged), ``flag:KEYWORD`` or ``move:FOLDER``."""
    text = value.strip()
    kind, _, argument = text.partition(":")
    kind = kind.lower()
    if kind == "leave" and not argument:
        return AfterImport("leave")
    if kind == "flag":
        flag = argument.strip() or r"\Flagged"
        if flag == "\\" or any(c in flag for c in ' ()[]{}"%*\r\n'):
            raise ValueError(f"after_import {value!r}: {flag!r} is not a usable IMAP keyword")
        if flag.lower() in (r"\seen", r"\deleted", r"\recent"):
            raise ValueError(f"after_import {value!r}: {flag} is not a marker of imported mail")
        return AfterImport("flag", flag=flag)
    if kind == "move":
        folder = argument.strip()
        if not folder:
            raise ValueError(f"after_import {value!r}: move needs a folder, e.g. move:Imported")
        return AfterImport("move", folder=folder)
    raise ValueError(f"after_import {value!r} is not leave, flag, flag:KEYWORD or move:FOLDER")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (plain-text IMAP is only sane there)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class MailboxConfig:
    """One IMAP account to fetch from, and how to log in and treat imported mail."""

    name: str
    host: str
    port: int
    tls: Literal["implicit", "starttls", "none"]
    username: str
    password: str | None = field(default=None, repr=False)
    oauth2: OAuth2Config | None = None
    folders: list[str] = field(default_factory=lambda: ["INBOX"])
    after_import: str = "leave"
    # A CA bundle to trust instead of the system's (self-hosted servers, tests).
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        where = f"mailbox {self.name!r}"
        if not self.name.strip():
            raise ValueError("mailbox name is empty")
        if not self.host.strip():
            raise ValueError(f"{where}: host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"{where}: port {self.port} is not between 1 and 65535")
        if self.tls not in TLS_MODES:
            raise ValueError(f"{where}: tls {self.tls!r} is not one of {', '.join(TLS_MODES)}")
        if not self.username:
            raise ValueError(f"{where}: username is empty")
        if (self.password is None) == (self.oauth2 is None):
            raise ValueError(f"{where}: give exactly one of password and oauth2")
        if not self.folders or any(not f.strip() for f in self.folders):
            raise ValueError(f"{where}: folders must name at least one folder, none empty")
        if len(set(self.folders)) != len(self.folders):
            raise ValueError(f"{where}: folders lists a folder twice")
        if self.timeout <= 0:
            raise ValueError(f"{where}: timeout must be positive")
        try:
            action = parse_after_import(self.after_import)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if action.folder is not None and action.folder in self.folders:
            raise ValueError(f"{where}: cannot move imported mail into a folder it fetches")

    @property
    def action(self) -> AfterImport:
        """The parsed after-import action."""
        return parse_after_import(self.after_import)


@dataclass(frozen=True)
class FetchedMail:
    """One message as it came off the server, with where it came from."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    raw: bytes = field(repr=False)


class Checkpoint(Protocol):
    """Per-folder watermarks: the last UID handled under the folder's UIDVALIDITY.

    ``run_forever`` calls it from one thread per mailbox, so implementations must be
    safe to call from several threads (each thread touches its own mailbox's rows).
    """

    def get(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        """``(uidvalidity, last_uid)`` of the folder, or None when never fetched."""
        ...

    def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Record that every wanted mail up to ``uid`` under ``uidvalidity`` is handled."""
        ...


class MemoryCheckpoint:
    """A Checkpoint kept in memory: for tests, benchmarks and one-off imports."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        """The folder's watermark, if any."""
        with self._lock:
            return self._marks.get((mailbox, folder))

    def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Move the watermark (a new UIDVALIDITY starts a new one)."""
        with self._lock:
            self._marks[(mailbox, folder)] = (uidvalidity, uid)
