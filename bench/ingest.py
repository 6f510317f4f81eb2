"""Inbound throughput: corpus mail appended to a real Dovecot, fetched and ingested into
PostgreSQL as `helpdesk fetch-mail --once` does it, against mail-parser alone on the same
bytes.

    .venv/bin/python -m bench.ingest [-n 2000] [--batch-size 100]

Jobs (acknowledgements) go to RQ on Redis as in production; sending them is the mail
workers' business, not the ingester's. Prints messages per second end to end, the
parse-only rate and their ratio. The ingest processes (--workers, default 2) are started
before the clock starts, as a long-running fetcher starts them once.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import tempfile
import time

import mailparser
import psycopg
import redis

from tests.support.corpus import mail_files
from tests.support.dovecot import DovecotServer

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/12"
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[^\n]*\n")


def corpus_sample(count: int) -> list[bytes]:
    """``count`` corpus mails (cycling through the corpus), each with its own Message-ID."""
    sources = [p.read_bytes() for p in mail_files()]
    sources = [raw for raw in sources if raw.strip()]
    sample = []
    for i in range(count):
        raw = sources[i % len(sources)]
        unique = f"Message-ID: <bench-{i}-{hashlib.sha256(raw).hexdigest()[:8]}@bench.test>\r\n"
        body = _MESSAGE_ID.sub(b"", raw, count=1)
        sample.append(unique.encode() + body)
    return sample


def parse_only_rate(sample: list[bytes]) -> float:
    """Messages per second for mail-parser alone on the same bytes."""
    started = time.perf_counter()
    for raw in sample:
        try:
            mailparser.parse_from_bytes(raw)
        except Exception:  # noqa: S112 - a few corpus files defeat mail-parser
            continue
    return len(sample) / (time.perf_counter() - started)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="mails to ingest (default 2000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="ingest processes (default 2)")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from helpdesk import create_app
    from helpdesk.committees import add_committee
    from helpdesk.extensions import db
    from helpdesk.inbound import runner
    from helpdesk.inbound.mailboxes import add_mailbox

    sample = corpus_sample(args.n)
    # Parse-only passes before and after the run, so that a machine that slows down or
    # speeds up meanwhile weighs on both figures alike; the median is reported.
    passes = [parse_only_rate(sample)]
    name = f"helpdesk_bench_{int(time.time())}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        with tempfile.TemporaryDirectory() as instance, DovecotServer() as dovecot:
            dovecot.add_user("bench", "bench-password")
            dovecot.append_many("bench", sample)
            app = create_app(
                {
                    "HELPDESK_INSTANCE_PATH": instance,
                    "HELPDESK_DATABASE_URL": f"{POSTGRES}/{name}",
                    "HELPDESK_REDIS_URL": REDIS_URL,
                    "HELPDESK_SECRET_KEY": "bench-" + "x" * 40,
                }
            )
            with app.app_context():
                upgrade()
                add_committee("info", "Info", mail_addresses=["info@conference.test"], triage=True)
                add_mailbox(
                    "bench",
                    host=dovecot.host,
                    port=dovecot.port,
                    tls="none",
                    username="bench",
                    password="bench-password",  # noqa: S106 - a throw-away test account
                )
                db.session.commit()
                configs = runner.mailbox_configs()
                db.session.remove()
            # The worker processes are started first: a fetcher starts them once and
            # then runs for days, so their start-up is reported, not counted.
            starting = time.perf_counter()
            handle = runner.make_handler(app, args.workers)
            startup = time.perf_counter() - starting
            started = time.perf_counter()
            try:
                ok = runner.fetch_all_once(app, configs, args.batch_size, handle=handle)
                elapsed = time.perf_counter() - started
            finally:
                # Stopping the processes is not counted either, like starting them.
                if hasattr(handle, "close"):
                    handle.close()
            with app.app_context():
                from helpdesk.models import InboundReceipt, QuarantinedMail, RawMail

                stored = db.session.query(RawMail).count()
                receipts = db.session.query(InboundReceipt).count()
                quarantined = db.session.query(QuarantinedMail).count()
                db.session.remove()
                for engine in db.engines.values():
                    engine.dispose()
        end_to_end = len(sample) / elapsed
        passes = sorted([*passes, parse_only_rate(sample), parse_only_rate(sample)])
        parse_only = passes[1]
        print(f"mails: {len(sample)} ({sum(map(len, sample)) / 1e6:.1f} MB), fetch ok: {ok}")
        print(f"ingest processes started in {startup:.1f} s (before the clock starts)")
        print(f"stored raw: {stored}, receipts: {receipts}, quarantined: {quarantined}")
        print(
            f"end to end (IMAP fetch + ingest into PostgreSQL, {args.workers} ingest "
            f"process(es)): {end_to_end:.0f} messages/s"
        )
        print(
            f"parse only (mail-parser alone, same bytes): {parse_only:.0f} messages/s "
            f"(median of {', '.join(f'{rate:.0f}' for rate in passes)})"
        )
        print(f"ratio: {end_to_end / parse_only:.2f}")
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
