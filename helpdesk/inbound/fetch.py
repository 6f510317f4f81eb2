"""Fetching a mailbox's new mail into a handler, advancing its checkpoint as it goes.

The contract with the handler (``handle(mail)``):

- ``handle`` commits its own transaction. A mail it cannot make sense of is its business
  (it records a quarantine entry and returns normally), so the fetcher moves on.
- ``handle`` raising means "could not be stored, try again later" (database down,
  disk full). The fetcher logs it, keeps handing later mails to ``handle`` in the same
  pass, but never advances the folder's watermark past the first mail that failed, so
  the next pass offers that mail (and, again, the ones after it) once more. ``handle``
  must therefore be idempotent, which the ingester's dedupe (Message-ID and
  mailbox/UIDVALIDITY/UID) provides.
- At the end of a pass with such failures, :class:`FetchIncomplete` is raised, listing
  each failed mail and the number handled; the watch loop reports it as the mailbox's
  health and retries after a back-off.
- A handler may also take a whole fetched batch at once (a ``handle_batch(mails)``
  method returning, per mail, None or the exception it failed with), e.g. to ingest in
  several processes; the watermark then advances after the batch, with the same rule.

- A batch handler may also split ``handle_batch`` in two: ``submit_batch(mails)``
  starts the work and returns an object whose ``results()`` waits for it, and
  ``make_durable()`` makes what was handled so far durable. The fetcher then overlaps
  its own work with the handler's: it fetches the next batch while the handler works on
  this one and submits it at once, so the handler has work queued when this one ends;
  then it waits for this one's results, makes it durable and advances past it. So
  ``submit_batch`` is called while the batch before may still be in the handler's
  hands: the handler keeps mails that depend on each other (a reply and the mail it
  answers) in order across batches. Batches are completed in order.

The watermark advances once per batch, after ``handle`` returned for each of its mails,
so a connection cut mid-fetch offers again at most the mails of the batch in hand (the
handler's dedupe recognises them). The after-import action (flag, move) runs
per batch after the watermark; when the connection breaks before it is applied, the
fetcher keeps the UIDs and applies the action first thing on the next connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from helpdesk.inbound.after_import import AfterImportQueue
from helpdesk.inbound.fetch_errors import FetchIncomplete, HandleFailure
from helpdesk.inbound.imap import ImapError, ImapSession
from helpdesk.inbound.mailbox import Checkpoint, FetchedMail, MailboxConfig
from helpdesk.inbound.oauth2 import TokenProvider

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
# A batch stops growing at this many bytes, so a run of large mails cannot exhaust memory.
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024

Handler = Callable[[FetchedMail], None]


def plan_batches(
    uids: Sequence[int], sizes: dict[int, int], batch_size: int, batch_bytes: int
) -> Iterator[list[int]]:
    """Split ``uids`` (in order) into batches of at most ``batch_size`` mails and bytes.

    A mail larger than ``batch_bytes`` travels alone.
    """
    if batch_size < 1 or batch_bytes < 1:
        raise ValueError("batch_size and batch_bytes must be positive")
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= batch_size or total + size > batch_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


@dataclass
class _FolderPass:
    """Progress through one folder in one pass."""

    folder: str
    uidvalidity: int
    failures: list[HandleFailure]
    # Once a handler failed, the watermark stays before that mail for the rest of the pass.
    blocked: bool = False


@dataclass
class _Submitted:
    """A batch in the handler's hands (see ``submit_batch`` in the module docstring)."""

    batch: list[int]
    fetched: dict[int, FetchedMail]
    work: Any  # what submit_batch returned

    def wait(self) -> dict[int, BaseException]:
        """Wait for the handler; the exceptions of the mails that failed, by UID."""
        mails = list(self.fetched.values())
        results = self.work.results()
        return {m.uid: e for m, e in zip(mails, results, strict=True) if e is not None}


class MailboxFetcher:
    """Fetches one mailbox's folders into ``handle`` over a session it keeps open."""

    def __init__(
        self,
        config: MailboxConfig,
        checkpoint: Checkpoint,
        handle: Handler,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        tokens: TokenProvider | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self.config = config
        self.checkpoint = checkpoint
        self.handle = handle
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.action = config.action
        if tokens is None and config.oauth2 is not None:
            tokens = TokenProvider(config.oauth2)
        self.tokens = tokens
        self.session: ImapSession | None = None
        self.after_import = AfterImportQueue(config.name, self.action)
        # The highest UID each folder is known to hold, as of the last pass.
        self._seen_upto: dict[str, int] = {}
        self._stop = threading.Event()
        self._handled = 0  # mails accepted by the handler in the current pass
        self._folder_errors: dict[str, str] = {}  # refusals met in the current pass

    def __enter__(self) -> MailboxFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> ImapSession:
        """The open session, connecting (and logging in) first when there is none."""
        if self.session is None or self.session.client is None:
            session = ImapSession(self.config, tokens=self.tokens)
            session.connect()
            self.session = session
        return self.session

    def close(self, *, polite: bool = True) -> None:
        """Log out (or, after a failure, just drop the connection)."""
        session, self.session = self.session, None
        if session is not None:
            session.logout() if polite else session.close()

    def fetch_all(self, stop: threading.Event | None = None) -> int:
        """One pass over every folder; returns how many mails ``handle`` accepted.

        Raises ImapConnectionError/ImapLoginError when the connection fails (progress
        so far is in the checkpoint) and FetchIncomplete when the pass finished but some
        mails or folders must be retried. A set ``stop`` ends the pass after the batch
        in hand.
        """
        self._stop = stop or threading.Event()
        session = self.connect()
        self._handled = 0
        failures: list[HandleFailure] = []
        folder_errors = self._folder_errors = {}
        for folder in self.config.folders:
            if self._stop.is_set():
                break
            try:
                self._fetch_folder(session, folder, failures)
            except ImapError as error:
                if session.client is None or type(error) is not ImapError:
                    raise
                # The server refused something about this folder only (missing folder,
                # move target gone): the other folders still get their mail.
                log.error("mailbox %s folder %r: %s", self.config.name, folder, error)
                folder_errors[folder] = str(error)
        if failures or folder_errors:
            raise FetchIncomplete(self.config.name, self._handled, failures, folder_errors)
        return self._handled

    def _fetch_folder(
        self, session: ImapSession, folder: str, failures: list[HandleFailure]
    ) -> None:
        name = self.config.name
        status = session.select(folder, readonly=not self.action.writes)
        mark = self.checkpoint.get(name, folder)
        if mark is None or mark[0] != status.uidvalidity:
            if mark is not None:
                log.warning(
                    "mailbox %s folder %r: UIDVALIDITY changed from %d to %d, rescanning",
                    name,
                    folder,
                    mark[0],
                    status.uidvalidity,
                )
            self.checkpoint.advance(name, folder, status.uidvalidity, 0)
            watermark = 0
        else:
            watermark = mark[1]
        refused = self.after_import.apply_left(session, folder, status.uidvalidity)
        if refused is not None:
            self._folder_errors[folder] = refused
        progress = _FolderPass(folder, status.uidvalidity, failures)
        cursor = watermark
        pipelined = hasattr(self.handle, "submit_batch")
        while uids := session.new_uids(cursor):
            sizes = session.sizes(uids)
            batches = plan_batches(uids, sizes, self.batch_size, self.batch_bytes)
            if pipelined:
                if not self._handle_pipelined(session, batches, progress):
                    return
            else:
                for batch in batches:
                    if self._stop.is_set():
                        return
                    self._handle_batch(session, batch, progress)
            cursor = uids[-1]
        # Everything below UIDNEXT as of the SELECT has been looked at by the searches.
        self._seen_upto[folder] = max(cursor, (status.uidnext or 1) - 1)

    def _fetch_batch(
        self, session: ImapSession, batch: list[int], progress: _FolderPass
    ) -> dict[int, FetchedMail]:
        name, folder, uidvalidity = self.config.name, progress.folder, progress.uidvalidity
        mails = session.fetch(batch)
        return {
            uid: FetchedMail(name, folder, uidvalidity, uid, mails[uid])
            for uid in batch
            if uid in mails
        }

    def _handle_batch(self, session: ImapSession, batch: list[int], progress: _FolderPass) -> None:
        fetched = self._fetch_batch(session, batch, progress)
        errors = self._run_handler(list(fetched.values()))
        self._finish_batch(session, batch, fetched, errors, progress)

    def _handle_pipelined(
        self, session: ImapSession, batches: Iterator[list[int]], progress: _FolderPass
    ) -> bool:
        """Handle ``batches``, submitting each as soon as it is fetched, while the one
        before is still in the handler's hands (see the module docstring); False when
        stopped before the end."""
        in_hand: deque[_Submitted] = deque()
        try:
            for batch in batches:
                if self._stop.is_set():
                    break
                try:
                    fetched = self._fetch_batch(session, batch, progress)
                except ImapError:
                    # The batches in hand still count; their after-import actions wait
                    # for the next connection.
                    while in_hand:
                        self._complete(None, in_hand.popleft(), progress)
                    raise
                if not self._stop.is_set():
                    mails = list(fetched.values())
                    in_hand.append(_Submitted(batch, fetched, self.handle.submit_batch(mails)))
                # At most two batches in hand: the one just submitted keeps the handler
                # busy while the fetcher completes the one before and fetches the next.
                while len(in_hand) > 1:
                    self._complete(session, in_hand.popleft(), progress)
            while in_hand:
                self._complete(session, in_hand.popleft(), progress)
        except BaseException:
            # Batches in the handler's hands finish before the error travels on. Their
            # watermark stays put: the next pass offers them again, and dedupe
            # recognises their mails.
            for submitted in in_hand:
                with contextlib.suppress(Exception):
                    submitted.wait()
            raise
        return not self._stop.is_set()

    def _complete(
        self,
        session: ImapSession | None,
        submitted: _Submitted,
        progress: _FolderPass,
        errors: dict[int, BaseException] | None = None,
    ) -> None:
        """Finish a submitted batch: wait for it (unless its ``errors`` are in), make it
        durable, advance past it. Without a ``session`` the after-import action is kept
        for the next connection."""
        if errors is None:
            errors = submitted.wait()
        self.handle.make_durable()
        self._finish_batch(session, submitted.batch, submitted.fetched, errors, progress)

    def _finish_batch(
        self,
        session: ImapSession | None,
        batch: list[int],
        fetched: dict[int, FetchedMail],
        errors: dict[int, BaseException],
        progress: _FolderPass,
    ) -> None:
        """Advance the watermark past a handled batch and apply the after-import action."""
        name, folder, uidvalidity = self.config.name, progress.folder, progress.uidvalidity
        done: list[int] = []
        advance_to: int | None = None
        for uid in batch:
            if uid not in fetched:
                log.info("mailbox %s folder %r: UID %d vanished", name, folder, uid)
            elif (error := errors.get(uid)) is not None:
                log.error(
                    "mailbox %s folder %r: handling UID %d failed",
                    name,
                    folder,
                    uid,
                    exc_info=error,
                )
                progress.failures.append(HandleFailure(name, folder, uidvalidity, uid, repr(error)))
                progress.blocked = True
                continue
            else:
                self._handled += 1
                done.append(uid)
            if not progress.blocked:
                advance_to = uid
        if advance_to is not None:
            self.checkpoint.advance(name, folder, uidvalidity, advance_to)
        self.after_import.apply(session, folder, uidvalidity, done)

    def _run_handler(self, mails: list[FetchedMail]) -> dict[int, BaseException]:
        """Hand the batch to the handler; the exceptions of the mails that failed, by UID."""
        handle_batch = getattr(self.handle, "handle_batch", None)
        if handle_batch is not None:
            results = handle_batch(mails)
            return {m.uid: e for m, e in zip(mails, results, strict=True) if e is not None}
        errors: dict[int, BaseException] = {}
        for mail in mails:
            try:
                self.handle(mail)
            except Exception as error:
                errors[mail.uid] = error
        return errors

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Wait for new mail in the first folder (IDLE, or a poll interval without it).

        Returns True when there may be mail to fetch, at once if some arrived since the
        last pass looked.
        """
        session = self.connect()
        folder = self.config.folders[0]
        status = session.select(folder, readonly=not self.action.writes)
        seen = self._seen_upto.get(folder)
        if seen is None or (status.uidnext is not None and status.uidnext - 1 > seen):
            return True
        return session.wait(timeout, stop)


def fetch_once(
    config: MailboxConfig,
    checkpoint: Checkpoint,
    handle: Handler,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Connect, fetch every folder's new mail into ``handle`` once, log out.

    Returns the number of mails ``handle`` accepted; see the module docstring for how
    failures of ``handle`` are reported (FetchIncomplete) and retried.
    """
    with MailboxFetcher(config, checkpoint, handle, batch_size=batch_size) as fetcher:
        try:
            return fetcher.fetch_all()
        except ImapError:
            fetcher.close(polite=False)
            raise
