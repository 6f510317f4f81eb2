"""Watching mailboxes for good: IDLE (or polling), reconnects with back-off, health reports.

:func:`run_forever` runs one thread per mailbox. Each thread fetches, then waits for new
mail with IDLE on the mailbox's first folder (other folders are looked at on every wake
and at least every ``poll_interval``). Any failure (network, login, refused token, a
handler that raised, a checkpoint that could not be written) is reported through the
``health`` callback and retried after an exponential back-off with jitter; nothing
escapes the thread, so one broken mailbox never stops the others.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from helpdesk.inbound.fetch import DEFAULT_BATCH_SIZE, Handler, MailboxFetcher
from helpdesk.inbound.fetch_errors import FetchIncomplete
from helpdesk.inbound.imap import ImapConnectionError, ImapLoginError
from helpdesk.inbound.mailbox import Checkpoint, MailboxConfig

log = logging.getLogger(__name__)

# RFC 2177 asks clients to renew IDLE before 29 minutes, and some servers cut it sooner.
# Renewing ends with a full look at the mailbox, so this also bounds the delay if a
# server ever fails to announce a message.
IDLE_TIMEOUT = 120.0
POLL_INTERVAL = 60.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


@dataclass(frozen=True)
class MailboxHealth:
    """A mailbox's state after a fetch pass or a failed attempt."""

    mailbox: str
    ok: bool
    at: datetime
    # When the mailbox was last fully fetched (None: not yet since start).
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    # Seconds since the mailbox was last known to be fully fetched (or since start).
    lag_seconds: float
    consecutive_failures: int
    # Mails the handler accepted in the pass this report is about.
    handled: int
    # Whether the server pushes new mail (IDLE) or is polled; None before the first login.
    idle: bool | None


HealthCallback = Callable[[MailboxHealth], None]


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential, capped, jittered.

    The jitter spreads over the upper half of the interval, so mailboxes that failed
    together (a server restart) do not all retry at the same moment.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** min(attempt - 1, 32))
    return ceiling / 2 + rng.random() * ceiling / 2


class _MailboxWatcher:
    """The loop of one mailbox, run in its own thread."""

    def __init__(
        self,
        config: MailboxConfig,
        checkpoint: Checkpoint,
        handle: Handler,
        stop: threading.Event,
        health: HealthCallback,
        *,
        batch_size: int,
        idle_timeout: float,
        poll_interval: float,
        backoff_base: float,
        backoff_cap: float,
    ) -> None:
        self.config = config
        self.fetcher = MailboxFetcher(config, checkpoint, handle, batch_size=batch_size)
        self.stop = stop
        self.health = health
        # IDLE watches only the first folder; the others need polling.
        self.wait_timeout = idle_timeout if len(config.folders) == 1 else poll_interval
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self.started = time.monotonic()
        self.caught_up_at: float | None = None
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.failures = 0

    def run(self) -> None:
        """Fetch, wait, repeat until stopped; report and back off on every failure."""
        log.info("watching mailbox %s", self.config.name)
        try:
            while not self.stop.is_set():
                try:
                    handled = self.fetcher.fetch_all(self.stop)
                except FetchIncomplete as error:
                    self._failed(error, error.handled)
                    # The failed mails are retried after the back-off, but the session is
                    # fine: keep waiting on it so new mail is not held up meanwhile.
                    self._wait(self._delay())
                    continue
                except Exception as error:
                    self._failed(error, 0)
                    self.fetcher.close(polite=False)
                    self.stop.wait(self._delay())
                    continue
                self._succeeded(handled)
                self._wait(None)
        finally:
            self.fetcher.close(polite=False)
            log.info("stopped watching mailbox %s", self.config.name)

    def _wait(self, limit: float | None) -> None:
        session = self.fetcher.session
        timeout = self.wait_timeout if session and session.supports_idle else self.poll_interval
        if limit is not None:
            timeout = min(timeout, limit)
        try:
            self.fetcher.wait(timeout, self.stop)
        except Exception as error:
            # A connection that dies while idle is normal (server restarts, NAT timeouts):
            # reconnect at once; the next fetch backs off if the server is really gone.
            log.info("mailbox %s: connection lost while waiting: %s", self.config.name, error)
            self.fetcher.close(polite=False)

    def _delay(self) -> float:
        delay = backoff_delay(
            self.failures, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng
        )
        log.info("mailbox %s: retrying in %.1f s", self.config.name, delay)
        return delay

    def _succeeded(self, handled: int) -> None:
        self.failures = 0
        self.caught_up_at = time.monotonic()
        self.last_success = datetime.now(UTC)
        self._report(ok=True, handled=handled)

    def _failed(self, error: Exception, handled: int) -> None:
        self.failures += 1
        self.last_error = _describe(error)
        self.last_error_at = datetime.now(UTC)
        if isinstance(error, ImapConnectionError | ImapLoginError | FetchIncomplete):
            log.warning("mailbox %s: %s", self.config.name, self.last_error)
        else:
            log.error("mailbox %s: unexpected failure", self.config.name, exc_info=error)
        self._report(ok=False, handled=handled)

    def _report(self, *, ok: bool, handled: int) -> None:
        since = self.caught_up_at if self.caught_up_at is not None else self.started
        session = self.fetcher.session
        report = MailboxHealth(
            mailbox=self.config.name,
            ok=ok,
            at=datetime.now(UTC),
            last_success=self.last_success,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            lag_seconds=0.0 if ok else time.monotonic() - since,
            consecutive_failures=self.failures,
            handled=handled,
            idle=session.supports_idle if session and session.client else None,
        )
        try:
            self.health(report)
        except Exception:
            log.exception("health callback failed for mailbox %s", self.config.name)


def _describe(error: Exception) -> str:
    if isinstance(error, ImapConnectionError | ImapLoginError | FetchIncomplete):
        return str(error)
    return f"{type(error).__name__}: {error}"


def run_forever(
    configs: MailboxConfig | Sequence[MailboxConfig],
    checkpoint: Checkpoint,
    handle: Handler,
    stop: threading.Event,
    health: HealthCallback,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    idle_timeout: float = IDLE_TIMEOUT,
    poll_interval: float = POLL_INTERVAL,
    backoff_base: float = BACKOFF_BASE,
    backoff_cap: float = BACKOFF_CAP,
) -> None:
    """Fetch every mailbox as mail arrives until ``stop`` is set.

    IMAP, login and handler failures never escape: they go to ``health`` and are retried.
    ``handle`` and ``checkpoint`` are called from one thread per mailbox.
    """
    mailboxes = [configs] if isinstance(configs, MailboxConfig) else list(configs)
    names = [config.name for config in mailboxes]
    if len(set(names)) != len(names):
        raise ValueError("mailbox names must be unique: the checkpoint is keyed by them")
    threads = []
    for config in mailboxes:
        watcher = _MailboxWatcher(
            config,
            checkpoint,
            handle,
            stop,
            health,
            batch_size=batch_size,
            idle_timeout=idle_timeout,
            poll_interval=poll_interval,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
        )
        thread = threading.Thread(target=watcher.run, name=f"imap-{config.name}", daemon=True)
        thread.start()
        threads.append(thread)
    try:
        stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
