"""Time the CSV import of 100,000 subscribers into a list, on SQLite and PostgreSQL.

Run from the repository: ``.venv/bin/python -m bench.subscriber_import [ROWS] [--profile]``.
PostgreSQL is taken from HELPDESK_BENCH_POSTGRES (default the local server); a scratch
database is created and dropped.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from helpdesk import create_app

SERVER = os.environ.get("HELPDESK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def make_csv(rows: int, name: str = "Person") -> bytes:
    """A file of ``rows`` valid rows plus one bad row of each kind the file alone shows."""
    lines = ["email,name,language,country,ticket"]
    lines += [f"person{i}@example.org,{name} {i},en,IT,student" for i in range(rows)]
    lines += ["not-an-address,Bad,,,", "person5@example.org,Twice,,,"]
    return ("\n".join(lines) + "\n").encode()


def run(database_url: str, instance: Path, rows: int, profile: bool) -> None:
    from flask_migrate import upgrade

    from helpdesk.committees import add_committee
    from helpdesk.extensions import db
    from helpdesk.outbound.audience import add_list
    from helpdesk.outbound.subscriber_import import import_csv

    app = create_app(
        {
            "HELPDESK_INSTANCE_PATH": str(instance),
            "HELPDESK_DATABASE_URL": database_url,
            "HELPDESK_SECRET_KEY": "bench-" + "x" * 40,
        }
    )
    with app.app_context():
        upgrade()
        add_committee("news", "News")
        target = add_list("news", committee="news", name="News")
        db.session.commit()
        passes = [
            ("first import", make_csv(rows)),
            ("same file again", make_csv(rows)),
            ("names changed", make_csv(rows, "Renamed")),
        ]
        for label, data in passes:
            profiler = cProfile.Profile() if profile else None
            started, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            report = import_csv(target.id, data, "bench.csv")
            db.session.commit()
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            kind = db.engine.dialect.name
            print(
                f"import {kind:10} {label:15}: {report.rows} rows in {elapsed:.2f} s "
                f"({report.rows / elapsed:,.0f} rows/s, {cpu:.2f} s CPU in this process; "
                f"load {os.getloadavg()[0]:.1f}); {report.summary()}"
            )
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    profile = "--profile" in sys.argv
    rows = int(args[0]) if args else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.sqlite3", Path(tmp), rows, profile)
        name = f"helpdesk_bench_{secrets.token_hex(3)}"
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run(f"{SERVER}/{name}", Path(tmp), rows, profile)
        finally:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
