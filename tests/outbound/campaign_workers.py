"""Real RQ workers sending a campaign: a PostgreSQL app, seeding, starting and killing workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from redis import Redis

from helpdesk.config import setting_variables
from tests.conftest import (
    REDIS_URL,
    ROOT,
    base_config,
    create_postgres_database,
    drop_postgres_database,
)
from tests.outbound.campaign_fixtures import POSTAL
from tests.support.sendgrid_server import API_KEY

HELPDESK = str(Path(sys.executable).parent / "helpdesk")
BODY = (
    "<style>p.intro { font-weight: bold }</style>"
    "<p class='intro'>Dear {{ name }},</p><p>the schedule for {{ email }} is out.</p>"
)


@contextlib.contextmanager
def worker_app(tmp_path: Path, sendgrid_url: str, **settings: str) -> Iterator:
    """A migrated PostgreSQL app whose mail goes to the stand-in through RQ on Redis."""
    from flask_migrate import upgrade

    from helpdesk import create_app
    from helpdesk.extensions import db

    url = create_postgres_database("helpdesk_campaign")
    Redis.from_url(REDIS_URL).flushdb()
    config = base_config(tmp_path, url)
    config.update(
        HELPDESK_REDIS_URL=REDIS_URL,
        HELPDESK_MAIL_BACKEND="sendgrid",
        HELPDESK_SENDGRID_API_KEY=API_KEY,
        HELPDESK_SENDGRID_HOST=sendgrid_url,
        HELPDESK_POSTAL_ADDRESS=POSTAL,
        **settings,
    )
    config.pop("HELPDESK_JOBS_RAISE")
    app = create_app(config)
    app.config["TEST_ENV"] = {k: str(v) for k, v in config.items() if k.startswith("HELPDESK_")}
    with app.app_context():
        upgrade()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_postgres_database(url)
        Redis.from_url(REDIS_URL).flushdb()


def seed_campaign(app, count: int) -> int:
    """A committee, a list of ``count`` subscribers, a template and a draft campaign."""
    from helpdesk.committees import add_committee
    from helpdesk.extensions import db
    from helpdesk.models.audience import MailingList, Subscriber, Subscription
    from helpdesk.outbound import campaigns
    from helpdesk.outbound.templates import save_template

    with app.app_context():
        committee = add_committee("news", "News", mail_addresses=["news@conference.test"])
        mailing_list = MailingList(slug="news", name="News", committee_id=committee.id)
        db.session.add(mailing_list)
        db.session.flush()
        db.session.execute(
            sa.insert(Subscriber),
            [
                {
                    "address_key": f"person{i}@example.com",
                    "email": f"person{i}@example.com",
                    "name": f"Person {i}",
                    "language": "en",
                    "attributes": {},
                    "status": "active",
                }
                for i in range(count)
            ],
        )
        db.session.execute(
            sa.insert(Subscription).from_select(
                ["list_id", "subscriber_id", "status", "consent_method", "consent_source"],
                sa.select(
                    sa.literal(mailing_list.id),
                    Subscriber.id,
                    sa.literal("subscribed"),
                    sa.literal("import"),
                    sa.literal("test"),
                ),
            )
        )
        save_template("news", subject="News for {{ name }}", html=BODY, committee_slug="news")
        campaign = campaigns.create_campaign("news", "news")
        db.session.commit()
        return campaign.id


def worker_env(app) -> dict[str, str]:
    """The environment of a `helpdesk worker` on ``app``'s database and Redis."""
    env = {k: v for k, v in os.environ.items() if k not in setting_variables()}
    env.update(app.config["TEST_ENV"], PYTHONPATH=str(ROOT))
    return env


def start_worker(app, log: Path) -> subprocess.Popen:
    """One `helpdesk worker` on every queue, in its own session."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            [HELPDESK, "worker"],
            cwd=ROOT,
            env=worker_env(app),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _children(pid: int) -> list[int]:
    result = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            result.append(int(entry))
    return result


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the worker and every descendant (RQ's work horse runs in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGSTOP)
    pending, seen = [process.pid], []
    while pending:
        pid = pending.pop()
        seen.append(pid)
        pending.extend(_children(pid))
    for pid in reversed(seen):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(30)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Kill every worker (tests end with no process left behind)."""
    for process in processes:
        if process.poll() is None:
            kill_tree(process)


def wait_until(predicate, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
