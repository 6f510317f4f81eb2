"""What notifications cost a new ticket: the hook's check when nobody listens, and the
Discord post plus member mails when a committee listens.

    .venv/bin/python -m bench.notifications [--tickets 200] [--members 10] [--postgres]

Runs the embedded set-up (jobs inline after the commit, the files mail backend) so the
figures include the work itself: Discord posts go to the local stand-in over loopback HTTP,
mails are written as .eml files. Prints p50/p95 milliseconds per ticket (create + commit).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.discord_server import DiscordStandIn

WEBHOOK = "https://discord.com/api/webhooks/123456789012345678/" + "bench_" * 6


def _timed(app, committee_id: int, count: int) -> list[float]:
    from helpdesk import tickets
    from helpdesk.extensions import db

    times = []
    for i in range(count):
        start = time.perf_counter()
        tickets.create_ticket(committee_id, f"Question {i} about the venue")
        db.session.commit()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{label:42} p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   n={len(times)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    options = parser.parse_args()

    from flask_migrate import upgrade

    from helpdesk import agents, committees, create_app, notifications
    from helpdesk.extensions import db
    from tests.conftest import create_postgres_database, drop_postgres_database

    stand_in = DiscordStandIn().start()
    folder = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    url = (
        create_postgres_database("helpdesk_bench_notify")
        if options.postgres
        else f"sqlite:///{folder / 'bench.sqlite3'}"
    )
    try:
        app = create_app(
            {
                "HELPDESK_INSTANCE_PATH": str(folder),
                "HELPDESK_DATABASE_URL": url,
                "HELPDESK_DISCORD_API_URL": stand_in.url,
                "HELPDESK_LOG_LEVEL": "error",
            }
        )
        with app.app_context():
            upgrade()
            quiet = committees.add_committee("quiet", "Quiet", mail_addresses=["q@bench.test"])
            loud = committees.add_committee(
                "loud", "Loud", visibility="private", mail_addresses=["l@bench.test"]
            )
            for i in range(options.members):
                user = agents.create_agent(f"member{i}@bench.test", f"Member {i}")
                committees.set_membership(loud.id, user.id)
                notifications.set_email_opt_in(user.id, loud.id, True)
            notifications.set_discord_webhook(loud.id, WEBHOOK)
            db.session.commit()
            _timed(app, quiet.id, 20)  # warm up
            silent = _timed(app, quiet.id, options.tickets)
            listened = _timed(app, loud.id, options.tickets)
            posts = len(stand_in.posts)
            mails = len(list(Path(app.config["HELPDESK_OUTBOX_PATH"]).glob("*.eml")))
            db.session.remove()
        database = "postgresql" if options.postgres else "sqlite"
        print(_line(f"new ticket, nobody listens ({database})", silent))
        print(
            _line(f"new ticket, Discord + {options.members} member mails", listened)
            + f"   posts={posts} mails={mails}"
        )
    finally:
        stand_in.stop()
        if options.postgres:
            drop_postgres_database(url)


if __name__ == "__main__":
    main()
