"""What a fetch pass reports when it could not finish: the mails and folders to retry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HandleFailure:
    """A mail whose handler raised; it will be offered again on the next pass."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    error: str


class FetchIncomplete(Exception):
    """A pass went through every folder but left mails or folders to retry."""

    def __init__(
        self,
        mailbox: str,
        handled: int,
        failures: list[HandleFailure] | None = None,
        folder_errors: dict[str, str] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.handled = handled
        self.failures = failures or []
        self.folder_errors = folder_errors or {}
        parts = []
        if self.failures:
            first = self.failures[0]
            parts.append(
                f"{len(self.failures)} mail(s) failed to be handled, first UID {first.uid} "
                f"in {first.folder!r}: {first.error}"
            )
        parts.extend(f"folder {name!r}: {error}" for name, error in self.folder_errors.items())
        super().__init__(f"mailbox {mailbox}: " + "; ".join(parts))
