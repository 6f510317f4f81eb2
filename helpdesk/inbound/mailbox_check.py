"""Checking a mailbox's settings against the server, for the "mailbox test" command."""

from __future__ import annotations

from dataclasses import dataclass

from helpdesk.inbound.imap import ImapSession
from helpdesk.inbound.mailbox import MailboxConfig
from helpdesk.inbound.oauth2 import TokenProvider


@dataclass(frozen=True)
class MailboxCheck:
    """What logging in to a mailbox showed: its folders and anything that will not work."""

    mailbox: str
    folders: list[str]
    capabilities: frozenset[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """Whether the mailbox can be fetched as configured."""
        return not self.problems

    @property
    def idle(self) -> bool:
        """Whether new mail is pushed (IDLE) rather than polled for."""
        return "IDLE" in self.capabilities


def check_mailbox(config: MailboxConfig, *, tokens: TokenProvider | None = None) -> MailboxCheck:
    """Log in, list folders and report what does not match the configuration.

    Raises ImapConnectionError or ImapLoginError when the login itself fails.
    """
    with ImapSession(config, tokens=tokens) as session:
        folders = session.list_folders()
        capabilities = session.capabilities
    problems = [
        f"folder {folder!r} does not exist" for folder in config.folders if folder not in folders
    ]
    action = config.action
    if action.action == "move":
        if action.folder not in folders:
            problems.append(f"move target folder {action.folder!r} does not exist")
        if not {"MOVE", "UIDPLUS"} & capabilities:
            problems.append("the server offers neither MOVE nor UIDPLUS: mail cannot be moved")
    return MailboxCheck(config.name, folders, capabilities, problems)
