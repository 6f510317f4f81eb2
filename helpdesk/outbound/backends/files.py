"""The embedded default backend: every copy becomes one .eml file in the outbox folder."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path

from helpdesk.outbound.backends.interface import (
    Outcome,
    OutgoingBatch,
    RecipientResult,
    same_outcome,
)
from helpdesk.outbound.backends.mime import FILE_POLICY, envelope_recipients, render_for_recipient
from helpdesk.outbound.backends.validation import sort_out

log = logging.getLogger(__name__)

# Bcc addresses are not in the message itself; this header records everyone a copy was
# meant for, as a local delivery agent's X-Original-To would.
ENVELOPE_HEADER = "X-Envelope-To"

_clock_lock = threading.Lock()
_last_ns = 0


def _unique_ns() -> int:
    """Nanoseconds since the epoch, strictly increasing within this process."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def outbox_file_name() -> str:
    """A new file name that sorts by creation time and is unique across processes."""
    ns = _unique_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000))
    return f"{stamp}.{ns % 1_000_000_000:09d}Z-{secrets.token_hex(6)}.eml"


class FilesBackend:
    """Writes each copy to ``outbox/<time>-<random>.eml``; the file name is the provider id.

    Each file is written under a hidden temporary name, flushed to disk and renamed into
    place, so a reader of the outbox sees whole messages or nothing.
    """

    name = "files"
    max_recipients_per_batch = 1000

    def __init__(self, outbox: Path) -> None:
        self.outbox = Path(outbox)

    def send(self, batch: OutgoingBatch) -> list[RecipientResult]:
        """Write one .eml per recipient; a write that fails is TEMPORARY, with the OS error."""
        sendable, results = sort_out(batch)
        if not sendable:
            return results
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            message = f"cannot create outbox {self.outbox}: {error}"
            log.error("%s", message)
            return sorted(
                results + same_outcome(sendable, Outcome.TEMPORARY, message),
                key=lambda r: r.index,
            )
        for index in sendable:
            recipient = batch.recipients[index]
            message = render_for_recipient(batch, recipient)
            message[ENVELOPE_HEADER] = ", ".join(envelope_recipients(recipient))
            name = outbox_file_name()
            try:
                self._write(name, message.as_bytes(policy=FILE_POLICY))
            except OSError as error:
                log.error("cannot write %s to %s: %s", name, self.outbox, error)
                results.append(
                    RecipientResult(index, Outcome.TEMPORARY, None, f"cannot write {name}: {error}")
                )
            else:
                results.append(RecipientResult(index, Outcome.ACCEPTED, name, None))
        self._sync_directory()
        return sorted(results, key=lambda r: r.index)

    def _write(self, name: str, data: bytes) -> None:
        target = self.outbox / name
        tmp = self.outbox / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _sync_directory(self) -> None:
        # The renames are what make the files visible; they are durable once the
        # directory is synced. One sync per batch instead of one per file.
        try:
            fd = os.open(self.outbox, os.O_RDONLY)
        except OSError as error:
            log.warning("cannot sync outbox %s: %s", self.outbox, error)
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
