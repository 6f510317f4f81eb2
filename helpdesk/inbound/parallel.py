"""Ingesting a fetched batch in several processes, without reordering what depends on order.

Parsing, classifying and writing one mail keeps one core busy; a machine with more cores
ingests a batch faster by spreading it over worker processes. Mails that must be handled
in order go to the same worker, in UID order: mails from the same sender (one
acknowledgement per interval) and mails that name each other's Message-IDs (a reply
arriving in the same batch as the mail it answers). Everything else is independent: each
worker writes its share in transactions of its own, and the dedupe keys settle any race.
While the workers ingest a batch, the fetcher fetches the next (see submit_batch).

A worker process that dies (killed, out of memory) fails the shares in the workers'
hands; new processes are started and the fetcher offers those mails again. Each of them
is then ingested in a task of its own, once the batches in flight are done, and one that
takes its process down alone as well is quarantined instead of being offered for ever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from email.utils import getaddresses
from typing import Any

from flask import Flask

from helpdesk.inbound.ingest import Source, make_durable, quarantine
from helpdesk.inbound.mailbox import FetchedMail
from helpdesk.inbound.rules import MACHINE_SENDERS
from helpdesk.storage import raw_mail_store

log = logging.getLogger(__name__)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELDS = re.compile(
    rb"(?im)^(from|message-id|in-reply-to|references):[ \t]*((?:.*(?:\r?\n[ \t]+.*)*))"
)
_IDS = re.compile(rb"<([^<>\s]+)>")
_HEADER_LIMIT = 256 * 1024


def ordering_keys(raw: bytes) -> set[str]:
    """What ties a mail to others that must be handled before or after it."""
    head = raw[:_HEADER_LIMIT]
    match = _HEADER_END.search(head)
    if match:
        head = head[: match.start()]
    keys: set[str] = set()
    for name, value in _FIELDS.findall(head):
        if name.lower() == b"from":
            text = value.decode("latin-1")
            for _, address in getaddresses([text]):
                address = address.strip().lower()
                # Mail from a delivery system is a bounce: it gets no acknowledgement and
                # opens no ticket, so its sender ties nothing together. (Keying on it put
                # every bounce from one provider into one group, in one worker.)
                if "@" in address and address.split("@", 1)[0] not in MACHINE_SENDERS:
                    keys.add("from:" + address)
        else:
            keys.update("id:" + found.decode("latin-1") for found in _IDS.findall(value))
    return keys


def ordered_groups(raws: Sequence[bytes]) -> list[list[int]]:
    """Indexes of ``raws`` split into groups that share an ordering key, each in order."""
    return _groups([ordering_keys(raw) for raw in raws])


def _groups(keys: Sequence[set[str]]) -> list[list[int]]:
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for index, found in enumerate(keys):
        for key in found:
            other = first_with.setdefault(key, index)
            parent[root(index)] = root(other)
    groups: dict[int, list[int]] = {}
    for index in range(len(keys)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


# -- worker processes --------------------------------------------------------------------

_worker_app: Any = None


def _start_worker(config: Mapping[str, Any]) -> None:
    global _worker_app
    from helpdesk import create_app

    _worker_app = create_app(dict(config))


def _ingest_group(items: list[tuple[bytes, tuple]]) -> list[str | None]:
    """Ingest mails in order, in one transaction; per mail None, or the error that kept it
    from being stored."""
    from helpdesk.inbound.batch import ingest_batch
    from helpdesk.inbound.ingest import Source

    with _worker_app.app_context():
        outcomes = ingest_batch([(raw, Source(*source)) for raw, source in items])
    results: list[str | None] = []
    for (_, source), outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, Exception):
            # Only failures to store (database down) get here; the fetcher retries.
            log.error("ingesting %s failed: %s", source[0], outcome)
            results.append(f"{type(outcome).__name__}: {outcome}")
        else:
            results.append(None)
    return results


def _ready() -> int:
    """A short task that tells which worker ran it (see ParallelIngester._start_all)."""
    time.sleep(0.2)
    return os.getpid()


class HandleFailed(Exception):
    """A mail a worker process could not store; the fetcher offers it again later."""


class ParallelIngester:
    """A fetch handler that ingests each batch in ``workers`` processes."""

    def __init__(self, app: Flask, workers: int) -> None:
        if workers < 2:
            raise ValueError("use the plain handler for a single process")
        self.app = app
        self.workers = workers
        self._unfinished: list[PendingBatch] = []
        # Mails that were in the workers' hands when a worker process died.
        self._suspects: set[tuple] = set()
        # Each mailbox's fetcher thread submits and waits on its own; this guards the
        # bookkeeping above, the batches' shares and the pool (never held while waiting).
        self._lock = threading.RLock()
        self.pool = self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor:
        # Spawned, not forked: the fetcher runs threads, and a fork copies their locks.
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(dict(self.app.extensions["helpdesk_config"]),),
        )
        self._start_all(pool)
        return pool

    def _start_all(self, pool: ProcessPoolExecutor, timeout: float = 120.0) -> None:
        """Start every worker now. The pool starts processes lazily and hands work to
        whichever is idle, so without this a batch can run on the first worker alone
        while the second is still loading the app."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < self.workers and time.monotonic() < deadline:
            seen.update(f.result() for f in [pool.submit(_ready) for _ in range(self.workers)])

    def handle_batch(self, mails: list[FetchedMail]) -> list[BaseException | None]:
        """Ingest a batch and make it durable; per mail None, or the exception it failed
        with."""
        results = self.submit_batch(mails).results()
        self.make_durable()
        return results

    def submit_batch(self, mails: list[FetchedMail]) -> PendingBatch:
        """Start ingesting a batch in the workers; ``results()`` of the answer waits.

        The batch before may still be in the workers' hands. Groups of this batch that
        share an ordering key with a mail of an unfinished batch are held back until
        every such batch is done; the others start at once.
        """
        with self._lock:
            suspects = any(_key(m) in self._suspects for m in mails)
        done = self._isolate(mails) if suspects else {}
        keys = [set() if i in done else ordering_keys(m.raw) for i, m in enumerate(mails)]
        with self._lock:
            earlier = [p for p in self._unfinished if not p.finished]
            busy: set[str] = set().union(*(p.keys for p in earlier))
            ready: list[list[int]] = []
            held: list[list[int]] = []
            for group in _groups(keys):
                group = [i for i in group if i not in done]
                depends = any(keys[i] & busy for i in group)
                (held if depends else ready).append(group)
            batch = PendingBatch(self, mails, set().union(*keys), earlier, done)
            batch.submit(self._shares(ready))
            batch.held = self._shares(held)
            self._unfinished = [*earlier, batch]
        return batch

    def _shares(self, groups: list[list[int]]) -> list[list[int]]:
        """Groups spread over shares of similar size, big groups first."""
        groups = sorted(groups, key=len, reverse=True)
        shares: list[list[int]] = [[] for _ in range(min(self.workers * 2, len(groups)))]
        for group in groups:
            min(shares, key=len).extend(group)
        return [share for share in shares if share]

    def _submit(self, items: list[tuple[bytes, tuple]]) -> Future:
        try:
            with self._lock:
                try:
                    return self.pool.submit(_ingest_group, items)
                except BrokenProcessPool:
                    # A worker died; the shares it took down were reported failed.
                    log.error("an ingest process died; starting new ones")
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = self._start_pool()
                    return self.pool.submit(_ingest_group, items)
        except Exception as error:  # the share fails; the fetcher offers it again
            failed: Future = Future()
            failed.set_exception(error)
            return failed

    def _isolate(self, mails: list[FetchedMail]) -> dict[int, BaseException | None]:
        """Ingest the suspects among ``mails`` one by one, each in a task of its own once
        the batches in flight are done; quarantine one whose process dies under it.
        Their results, by index."""
        with self._lock:
            unfinished = list(self._unfinished)
        for earlier in unfinished:
            earlier.results()
        done: dict[int, BaseException | None] = {}
        for index, mail in enumerate(mails):
            with self._lock:
                if _key(mail) not in self._suspects:
                    continue
            try:
                (outcome,) = self._submit([_item(mail)]).result()
                done[index] = HandleFailed(outcome) if outcome else None
            except BrokenProcessPool:
                done[index] = self._quarantine(mail)
            except Exception as error:
                done[index] = HandleFailed(f"{type(error).__name__}: {error}")
            with self._lock:
                self._suspects.discard(_key(mail))
        return done

    def _quarantine(self, mail: FetchedMail) -> BaseException | None:
        description, *where = _item(mail)[1]
        log.error("%s took an ingest process down twice: quarantining it", description)
        error = RuntimeError("the ingest process died handling this mail, twice")
        with self.app.app_context():
            try:
                sha256 = raw_mail_store().put(mail.raw)
                quarantine(mail.raw, sha256, Source(description, *where), "ingest process", error)
            except Exception as failure:  # database or disk down: offered again later
                log.exception("could not quarantine %s", description)
                return HandleFailed(f"{type(failure).__name__}: {failure}")
        return None

    def _finished(self) -> None:
        """A batch is done: start what later batches held back for it."""
        with self._lock:
            self._unfinished = [p for p in self._unfinished if not p.finished]
            for batch in self._unfinished:
                batch.release()

    def make_durable(self) -> None:
        """Make everything the workers committed so far durable."""
        with self.app.app_context():
            make_durable()

    def __call__(self, mail: FetchedMail) -> None:
        """Single mails (outside batches) are ingested by a worker too."""
        (error,) = self.handle_batch([mail])
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class PendingBatch:
    """A batch in the workers' hands: shares started, and shares held back until the
    batches before it that they depend on are done."""

    def __init__(
        self,
        ingester: ParallelIngester,
        mails: list[FetchedMail],
        keys: set[str],
        before: list[PendingBatch],
        done: dict[int, BaseException | None],
    ) -> None:
        self.ingester = ingester
        self.mails = mails
        self.keys = keys
        self.before = before
        self.done = done
        self.futures: list[tuple[list[int], Future]] = []
        self.held: list[list[int]] = []
        self.finished = False

    def submit(self, shares: list[list[int]]) -> None:
        """Start ``shares`` (lists of indexes into the batch's mails)."""
        for share in shares:
            future = self.ingester._submit([_item(self.mails[i]) for i in share])
            self.futures.append((share, future))

    def release(self) -> None:
        """Start the held-back shares once every batch before this one is done."""
        with self.ingester._lock:
            if self.held and all(p.finished for p in self.before):
                shares, self.held = self.held, []
                self.submit(shares)

    def results(self) -> list[BaseException | None]:
        """Wait for the batch; per mail None, or the exception it failed with."""
        for earlier in self.before:
            if not earlier.finished:
                earlier.results()
        self.release()
        with self.ingester._lock:
            # Every batch before is done, so nothing is held back any more.
            futures = list(self.futures)
        results: list[BaseException | None] = [None] * len(self.mails)
        for index, result in self.done.items():
            results[index] = result
        for share, future in futures:
            try:
                outcomes = future.result()
            except Exception as error:  # a worker died: its whole share is retried
                outcomes = [f"{type(error).__name__}: {error}"] * len(share)
                if isinstance(error, BrokenProcessPool):
                    with self.ingester._lock:
                        self.ingester._suspects.update(_key(self.mails[i]) for i in share)
            for index, outcome in zip(share, outcomes, strict=True):
                results[index] = HandleFailed(outcome) if outcome else None
        with self.ingester._lock:
            if self.finished:
                return results
            self.finished = True
        self.ingester._finished()
        return results


def _key(mail: FetchedMail) -> tuple:
    return (mail.mailbox, mail.folder, mail.uidvalidity, mail.uid)


def _item(mail: FetchedMail) -> tuple[bytes, tuple]:
    description = f"{mail.mailbox}/{mail.folder} UID {mail.uid}"
    return mail.raw, (description, mail.mailbox, mail.folder, mail.uidvalidity, mail.uid)
