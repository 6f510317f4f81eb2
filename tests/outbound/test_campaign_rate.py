"""Rate fidelity: three RQ workers share one limit of 50 recipients a second for a minute.

Measured where it matters, at the provider: the stand-in's receive times. The busiest
one-second window stays within 5 % over the limit and the mean within 5 % of it.
"""

from __future__ import annotations

import bisect
import time

import pytest

from tests.outbound.campaign_workers import (
    seed_campaign,
    start_worker,
    stop_all,
    wait_until,
    worker_app,
)
from tests.support.sendgrid_server import SendGridStandIn

RATE = 50
SECONDS = 60
WARM_UP = 3

pytestmark = pytest.mark.timeout(300)


def _arrivals(stand_in) -> list[float]:
    times = []
    for request in list(stand_in.accepted):
        times.extend([request.received_at] * len(request.body["personalizations"]))
    return sorted(times)


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals in any window [t, t + width) starting at an arrival."""
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


def test_three_workers_keep_to_one_shared_rate(tmp_path):
    from helpdesk.extensions import db
    from helpdesk.outbound import campaigns

    with (
        SendGridStandIn() as stand_in,
        worker_app(tmp_path, stand_in.url, HELPDESK_MAIL_RATE=f"{RATE}/second") as app,
    ):
        campaign_id = seed_campaign(app, RATE * (SECONDS + WARM_UP + 20))
        workers = [start_worker(app, tmp_path / f"worker{i}.log") for i in range(3)]
        try:
            with app.app_context():
                campaigns.launch(campaign_id)
                db.session.remove()
            assert wait_until(lambda: len(stand_in.accepted) > 0, 60, 0.1)
            start = stand_in.accepted[0].received_at + WARM_UP
            time.sleep(max(0.0, start + SECONDS + 1 - time.time()))
        finally:
            stop_all(workers)
    times = [t for t in _arrivals(stand_in) if start <= t < start + SECONDS]
    mean = len(times) / SECONDS
    busiest = busiest_window(times)
    print(f"\nrate test: limit {RATE}/s, mean {mean:.2f}/s, busiest 1-s window {busiest}")
    assert busiest <= RATE * 1.05
    assert abs(mean - RATE) <= RATE * 0.05
