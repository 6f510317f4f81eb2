"""The after-import action (flag, move) of handled mail, kept until the server confirms it.

The fetcher applies the action per batch, after the watermark has passed the batch. When
the connection breaks first (or the batch finished while the connection was gone), the
UIDs are kept per folder and the action is applied first thing on the next connection.
"""

from __future__ import annotations

import logging

from helpdesk.inbound.imap import ImapError, ImapSession
from helpdesk.inbound.mailbox import AfterImport

log = logging.getLogger(__name__)


class AfterImportQueue:
    """Handled UIDs whose after-import action is not yet confirmed, per folder."""

    def __init__(self, mailbox: str, action: AfterImport) -> None:
        self.mailbox = mailbox
        self.action = action
        self._unapplied: dict[str, tuple[int, set[int]]] = {}

    def apply(
        self, session: ImapSession | None, folder: str, uidvalidity: int, uids: list[int]
    ) -> None:
        """Apply the action to handled mail, or (without a session, or when the connection
        breaks) keep it to apply first thing on the next connection."""
        if self.action.action == "leave" or not uids:
            return
        known_validity, pending = self._unapplied.get(folder, (uidvalidity, set()))
        if known_validity != uidvalidity:
            pending = set()
        pending.update(uids)
        self._unapplied[folder] = (uidvalidity, pending)
        if session is None:
            return
        session.apply_after_import(sorted(pending), self.action)
        del self._unapplied[folder]

    def apply_left(self, session: ImapSession, folder: str, uidvalidity: int) -> str | None:
        """Apply what an earlier connection left unconfirmed in ``folder``; the server's
        refusal, if it refused (new mail is still fetched; the caller reports it)."""
        entry = self._unapplied.get(folder)
        if entry is None:
            return None
        if entry[0] != uidvalidity:
            # Those UIDs name nothing in the new generation of the folder.
            del self._unapplied[folder]
            return None
        log.info(
            "mailbox %s folder %r: applying the after-import action left from before",
            self.mailbox,
            folder,
        )
        try:
            session.apply_after_import(sorted(entry[1]), self.action)
        except ImapError as error:
            if type(error) is not ImapError:
                raise
            log.error("mailbox %s folder %r: %s", self.mailbox, folder, error)
            return str(error)
        self._unapplied.pop(folder, None)
        return None
