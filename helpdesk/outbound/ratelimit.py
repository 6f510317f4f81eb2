"""One sending rate for every worker: a paced token bucket in Redis (or in process).

``HELPDESK_MAIL_RATE`` (``50/second;100000/hour``, the `limits` notation) sets the budgets
of the configured backend. The limiter paces recipients evenly at the strictest of them
(an hourly budget is spread over the hour), a little under the limit so that network
jitter cannot push a one-second window over it. The state is one "theoretical arrival
time" per backend (GCRA), updated atomically by a Lua script, so any number of workers
on any number of machines share it. A sender that comes a little late may use the slot it
missed (half a slot of slack, so two senders never go at the same instant), so small
delays do not lower the mean rate.

Transactional mail has priority: it always reserves its slot, pushing bulk back, while
bulk takes a slot only when one is free now and never reserves ahead. A 20,000-recipient
campaign therefore delays an acknowledgement by at most one bulk slot.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from flask import current_app
from limits import parse_many

log = logging.getLogger(__name__)

Lane = Literal["bulk", "transactional"]
# Pace at 97 % of the budget: on a busy machine a delayed hand-off and the next, on time,
# reach the provider close together, and the margin (1.5 recipients a second at 50/s)
# keeps the busiest second inside the budget.
PACE = 0.97
# The batch a bulk job hands off at once holds about this many seconds of the budget, so
# the provider sees a steady flow of small requests at low rates and full ones at high.
BATCH_SECONDS = 0.02
# A bulk job claims this many seconds' worth at once and hands it off in paced chunks.
CLAIM_SECONDS = 2.0
# ... and marks about this many seconds' worth as handing off in one committed step.
ROUND_SECONDS = 0.5

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = now - tonumber(ARGV[1]) / 2
if tat < floor then tat = floor end
if ARGV[3] == '0' and tat > now then
  return {0, tat - now}
end
local new = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 60000)
if tat < now then return {1, 0} end
return {1, tat - now}
"""


@dataclass(frozen=True)
class Pace:
    """Microseconds between two recipients; 0 means no limit."""

    interval_us: int

    @property
    def per_second(self) -> float | None:
        """The paced rate, or None when unlimited."""
        return 1_000_000 / self.interval_us if self.interval_us else None


@lru_cache(maxsize=32)
def pace_for(rate: str | None) -> Pace:
    """The pacing of a rate string: the strictest budget's spacing, at PACE of it."""
    if not rate:
        return Pace(0)
    interval = 0.0
    for item in parse_many(rate):
        interval = max(interval, item.get_expiry() / item.amount)
    return Pace(int(interval * 1_000_000 / PACE))


def bulk_batch_size(configured: int, pace: Pace) -> int:
    """How many recipients a bulk job hands off at once at this pace (1..configured)."""
    per_second = pace.per_second
    if per_second is None:
        return configured
    return max(1, min(configured, int(per_second * BATCH_SECONDS)))


def bulk_round_size(configured: int, pace: Pace) -> int:
    """How many recipients one committed hand-off step covers: about ROUND_SECONDS."""
    per_second = pace.per_second
    if per_second is None:
        return configured
    return max(1, min(configured, int(per_second * ROUND_SECONDS)))


def bulk_claim_size(configured: int, pace: Pace) -> int:
    """How many recipients a bulk job claims at once: about CLAIM_SECONDS of the budget."""
    per_second = pace.per_second
    if per_second is None:
        return configured
    return max(1, min(configured, int(per_second * CLAIM_SECONDS)))


class _LocalBucket:
    """The same algorithm for one process (the embedded default, without Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tat: dict[str, float] = {}

    def take(self, key: str, interval_us: int, cost: int, reserve: bool) -> tuple[bool, float]:
        with self.lock:
            now = time.monotonic() * 1_000_000
            tat = max(self.tat.get(key, 0.0), now - interval_us / 2)
            if not reserve and tat > now:
                return False, tat - now
            self.tat[key] = tat + interval_us * cost
            return True, max(0.0, tat - now)


_local = _LocalBucket()


def _take(key: str, pace: Pace, cost: int, reserve: bool) -> tuple[bool, float]:
    """(taken, microseconds to wait) from Redis when configured, else in process."""
    if current_app.config.get("HELPDESK_REDIS_URL"):
        from helpdesk.jobs import redis_connection

        connection = redis_connection()
        script = current_app.extensions.get("helpdesk_rate_script")
        if script is None:
            script = current_app.extensions["helpdesk_rate_script"] = connection.register_script(
                _SCRIPT
            )
        taken, wait = script(
            keys=[key], args=[pace.interval_us, cost, int(reserve)], client=connection
        )
        return bool(taken), float(wait)
    return _local.take(key, pace.interval_us, cost, reserve)


def current_pace() -> Pace:
    """The pace of the app's ``HELPDESK_MAIL_RATE``."""
    return pace_for(current_app.config.get("HELPDESK_MAIL_RATE"))


def _key() -> str:
    backend = str(current_app.config.get("HELPDESK_MAIL_BACKEND") or "files")
    return f"helpdesk:mail-rate:{backend}"


def acquire(cost: int, lane: Lane = "bulk", *, max_wait: float | None = None) -> bool:
    """Wait until ``cost`` recipients may be handed off; False if ``max_wait`` ran out first.

    Transactional mail reserves its slot and waits for it; bulk mail polls for a free slot.
    """
    pace = current_pace()
    if not pace.interval_us or cost <= 0:
        return True
    key = _key()
    deadline = None if max_wait is None else time.monotonic() + max_wait
    while True:
        taken, wait_us = _take(key, pace, cost, reserve=lane == "transactional")
        wait = wait_us / 1_000_000
        if taken:
            if wait > 0:
                time.sleep(wait)
            return True
        if deadline is not None and time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)


def transactional_slot() -> None:
    """Take a slot for one transactional mail (the priority lane); blocks until it is due."""
    acquire(1, "transactional")
