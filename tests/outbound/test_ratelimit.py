"""The shared mail rate: pacing, one budget across processes, transactional mail first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from redis import Redis

from helpdesk.outbound import ratelimit
from tests.conftest import REDIS_URL


def test_the_strictest_budget_sets_the_pace_a_little_under_it():
    pace = ratelimit.pace_for("50/second;100000/hour")
    assert pace.per_second == pytest.approx(100000 / 3600 * ratelimit.PACE, rel=1e-3)
    assert ratelimit.pace_for(None).per_second is None
    fast = ratelimit.pace_for("1000/second")
    assert ratelimit.bulk_batch_size(500, fast) == 19
    assert ratelimit.bulk_batch_size(500, ratelimit.pace_for("50/second")) == 1
    assert ratelimit.bulk_batch_size(500, ratelimit.pace_for(None)) == 500


@pytest.fixture(params=["memory", "redis"])
def limited(request, app, monkeypatch) -> Iterator:
    """The app limited to 20 recipients a second, shared in process or through Redis."""
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_RATE", "20/second")
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_BACKEND", f"test-{time.time_ns()}")
    if request.param == "redis":
        with Redis.from_url(REDIS_URL) as client:
            client.ping()
        monkeypatch.setitem(app.config, "HELPDESK_REDIS_URL", REDIS_URL)
    yield app
    state = app.extensions.pop("helpdesk_redis", None)
    app.extensions.pop("helpdesk_rate_script", None)
    if state:
        state["client"].close()


def test_bulk_keeps_to_the_rate_and_transactional_mail_is_not_held_up(limited):
    taken: list[float] = []
    stop = threading.Event()

    def bulk_sender():
        with limited.app_context():
            while not stop.is_set():
                if ratelimit.acquire(1, "bulk", max_wait=0.5):
                    taken.append(time.monotonic())

    senders = [threading.Thread(target=bulk_sender) for _ in range(3)]
    for thread in senders:
        thread.start()
    try:
        time.sleep(0.5)
        with limited.app_context():
            waits = []
            for _ in range(3):
                start = time.monotonic()
                ratelimit.transactional_slot()
                waits.append(time.monotonic() - start)
                time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in senders:
            thread.join(5)
    interval = 1 / (20 * ratelimit.PACE)
    # Bulk pushed back, not ahead: an acknowledgement waits at most about two slots.
    assert max(waits) < 2 * interval + 0.05
    window = [t for t in taken if taken[0] + 0.5 <= t < taken[0] + 1.5]
    assert len(window) <= 21
    assert len(window) >= 15  # three busy senders use what transactional mail leaves
