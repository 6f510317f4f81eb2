"""How fast a campaign goes out: 100,000 personalised recipients through RQ workers.

Run from the project root: ``python -m bench.campaign [--recipients N] [--workers N]``.
Needs PostgreSQL and Redis (as the tests do: HELPDESK_TEST_POSTGRES, HELPDESK_TEST_REDIS_URL;
the Redis database is flushed). The SendGrid stand-in runs as its own process; no rate limit.

Prints three lines: the campaign's recipients per second from launch (the INSERT ...
SELECT of every delivery included) until it is marked sent, a bare baseline (the same
rendering and the same batches posted by as many processes, with no database and no
queue) and the ratio of the two.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tests.conftest  # noqa: F401  (drops the developer's HELPDESK_* settings)
from tests.outbound.campaign_workers import (
    seed_campaign,
    start_worker,
    stop_all,
    wait_until,
    worker_app,
)


def start_stand_in() -> tuple[subprocess.Popen, str]:
    """The SendGrid stand-in in its own process; returns it and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sendgrid_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        raise RuntimeError(f"stand-in did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def _baseline_part(args: tuple[dict, int, int, int]) -> int:
    """Render and post recipients [start, stop) in batches, as a worker would, no database."""
    config, start, stop, batch_size = args
    from helpdesk import create_app
    from helpdesk.outbound import personalise, templates
    from helpdesk.outbound.backends import get_backend
    from helpdesk.outbound.backends.interface import Outcome
    from helpdesk.outbound.render import default_template

    app = create_app(config)
    sent = 0
    with app.app_context():
        template = templates.MailTemplate(
            name="bench", subject="News for {{ name }}", html=BODY, text="", committee_id=None
        )
        campaign = personalise.CampaignInfo(
            1,
            1,
            "News",
            "bench",
            templates.compose(
                template,
                (
                    default_template("newsletter-layout.html"),
                    default_template("newsletter-layout.txt"),
                ),
            ),
            "News <news@conference.test>",
            None,
        )
        backend = get_backend(app.config)
        for first in range(start, stop, batch_size):
            rows = [
                (i, i, f"person{i}@example.com", f"Person {i}", "en", {})
                for i in range(first, min(stop, first + batch_size))
            ]
            groups, _ = personalise.render_rows(campaign, rows)
            for group in groups:
                html, text = personalise.finish_group(group)
                batch = personalise.backend_batch(
                    campaign, group.subject, html, text, group.members
                )
                results = backend.send(batch)
                sent += sum(r.outcome == Outcome.ACCEPTED for r in results)
    return sent


def baseline(config: dict, recipients: int, processes: int, batch_size: int) -> float:
    """Recipients per second of rendering and posting alone, in ``processes`` processes."""
    share = -(-recipients // processes)
    parts = [
        (config, p * share, min(recipients, (p + 1) * share), batch_size) for p in range(processes)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        start = time.perf_counter()
        sent = sum(pool.map(_baseline_part, parts))
        elapsed = time.perf_counter() - start
    if sent != recipients:
        raise RuntimeError(f"baseline sent {sent} of {recipients}")
    return recipients / elapsed


BODY = (
    "<style>p.intro { font-weight: bold } p { line-height: 1.5 }</style>"
    "<p class='intro'>Dear {{ name }},</p>"
    + "<p>The schedule for the conference is now online; {{ email }} is registered.</p>"
    * 20
)


def main() -> None:
    """Run the campaign, then the baseline, and print both and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    stand_in, url = start_stand_in()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            worker_app(
                Path(tmp),
                url,
                HELPDESK_CAMPAIGN_BATCH_SIZE=str(args.batch_size),
                HELPDESK_CAMPAIGN_JOBS=str(args.workers),
            ) as app,
        ):
            from helpdesk.extensions import db
            from helpdesk.models.campaigns import Campaign, CampaignStatus
            from helpdesk.outbound import campaigns, templates

            campaign_id = seed_campaign(app, args.recipients)
            with app.app_context():
                templates.save_template("news", subject="News for {{ name }}", html=BODY)
                db.session.commit()
                db.session.remove()
            workers = [start_worker(app, Path(tmp) / f"worker{i}.log") for i in range(args.workers)]
            try:
                time.sleep(5)  # workers up and idle
                with app.app_context():
                    start = time.perf_counter()
                    campaigns.launch(campaign_id)
                    db.session.remove()

                def sent() -> bool:
                    with app.app_context():
                        try:
                            status = db.session.get(Campaign, campaign_id).status
                            return status == CampaignStatus.SENT
                        finally:
                            db.session.remove()

                if not wait_until(sent, 1800, 0.2):
                    raise RuntimeError("the campaign did not finish")
                elapsed = time.perf_counter() - start
                with app.app_context():
                    counts = campaigns.counts(campaign_id)
                    db.session.remove()
            finally:
                stop_all(workers)
            if counts["sent"] != args.recipients:
                raise RuntimeError(f"sent {counts}")
            real = args.recipients / elapsed
            config = {k: v for k, v in app.config["TEST_ENV"].items()}
            config.pop("HELPDESK_REDIS_URL", None)
            config["HELPDESK_DATABASE_URL"] = f"sqlite:///{tmp}/unused.sqlite3"
            config["HELPDESK_INSTANCE_PATH"] = tmp
            bare = baseline(config, args.recipients, args.workers, args.batch_size)
    finally:
        stand_in.terminate()
        stand_in.wait(30)
    print(
        f"campaign: {args.recipients} recipients, {args.workers} RQ workers, PostgreSQL: "
        f"{real:,.0f} recipients/s ({elapsed:.1f} s)"
    )
    print(f"bare baseline (render + POST, no database, no queue): {bare:,.0f} recipients/s")
    print(f"ratio bare/campaign: {bare / real:.2f}x")


if __name__ == "__main__":
    main()
