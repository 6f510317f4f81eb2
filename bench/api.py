"""Transactional API under a steady load: accept latency and hand-off to SendGrid.

Run from the project root: ``python -m bench.api [--rate 50] [--seconds 30]``.

Everything runs as in production, each in its own process: the app under gunicorn
(threaded workers) on a fresh PostgreSQL database and Redis, RQ workers (three,
``--no-fork``) on the mail-transactional queue with the sendgrid backend, and the
SendGrid stand-in. The
load generator sends POST /api/v1/messages at a fixed rate (open loop: a slow answer
does not delay the next request) and prints:

- accept latency: request sent to 202 received (target p95 <= 20 ms);
- hand-off: request sent to the stand-in accepting the mail (target p95 <= 1 s).

The machine's load average is printed: the figures mean little on a machine that is
busy with other work. Uses Redis database 9 (flushed before and after) and a database
it creates and drops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("HELPDESK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("HELPDESK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
SENDER = "Registration <registration@conference.example>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process {process.args} ended with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Services:
    """The database, the stand-in, gunicorn and the worker, started and stopped together."""

    def __init__(self, workers: int, threads: int, rq_workers: int, no_fork: bool) -> None:
        self.rq_workers = rq_workers
        self.worker_options = ["--no-fork"] if no_fork else []
        self.workers = workers
        self.threads = threads
        self.processes: list[subprocess.Popen] = []
        self.instance = Path(tempfile.mkdtemp(prefix="bench-api-"))
        self.database = f"bench_api_{os.getpid()}"
        self.stand_in_port = _free_port()
        self.app_port = _free_port()

    def env(self) -> dict[str, str]:
        """The environment of every helpdesk process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
        env.update(
            PYTHONPATH=str(ROOT),
            HELPDESK_INSTANCE_PATH=str(self.instance),
            HELPDESK_DATABASE_URL=f"{POSTGRES}/{self.database}",
            HELPDESK_REDIS_URL=REDIS_URL,
            HELPDESK_SECRET_KEY="bench-" + "x" * 40,
            HELPDESK_MAIL_BACKEND="sendgrid",
            HELPDESK_SENDGRID_API_KEY="SG.stand-in-test-key",
            HELPDESK_SENDGRID_HOST=f"http://127.0.0.1:{self.stand_in_port}",
            HELPDESK_MAIL_FROM=SENDER,
            HELPDESK_LOG_LEVEL="warning",
        )
        return env

    def _start(self, args: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.instance / f"{Path(args[0]).name}-{len(self.processes)}.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def _helpdesk(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "helpdesk"), *args],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start(self) -> str:
        """Start everything; return an API key with messages:send and a high limit."""
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        redis.Redis.from_url(REDIS_URL).flushdb()
        self._helpdesk("init-db")
        self._helpdesk("create-agent", "bench@conference.example", "--name", "Bench")
        token = self._helpdesk(
            "api-token",
            "bench@conference.example",
            "--scope",
            "messages:send",
            "--rate-limit",
            "10000/second",
        ).strip()
        stand_in = self._start(
            [
                sys.executable,
                "-m",
                "tests.support.sendgrid_server",
                "--port",
                str(self.stand_in_port),
            ]
        )
        _wait_for_port(self.stand_in_port, stand_in)
        app = self._start(
            [
                str(BIN / "gunicorn"),
                "--worker-class",
                "gthread",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--bind",
                f"127.0.0.1:{self.app_port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ]
        )
        _wait_for_port(self.app_port, app)
        for _ in range(self.rq_workers):
            self._start(
                [str(BIN / "helpdesk"), "worker", "mail-transactional", *self.worker_options]
            )
        return token

    def stop(self) -> None:
        """Stop every process (its whole session) and remove the database."""
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if os.environ.get("HELPDESK_BENCH_KEEP"):
            print(f"kept the database {self.database}")
        else:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        redis.Redis.from_url(REDIS_URL).flushdb()
        if os.environ.get("HELPDESK_BENCH_KEEP"):
            print(f"kept the logs in {self.instance}")
        else:
            shutil.rmtree(self.instance, ignore_errors=True)


def _received(port: int) -> dict[int, float]:
    """outbound_message_id -> when the stand-in accepted it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_standin/recipients") as response:
        recipients = json.load(response)
    return {
        int(r["custom_args"]["outbound_message_id"]): r["received_at"]
        for r in recipients
        if "outbound_message_id" in r["custom_args"]
    }


def drive(port: int, token: str, rate: float, seconds: float, connections: int):
    """Send requests at ``rate`` per second; return [(sent_at, latency, status, id)]."""
    total = int(rate * seconds)
    slots: queue.Queue[int | None] = queue.Queue()
    for i in range(total):
        slots.put(i)
    for _ in range(connections):
        slots.put(None)
    results: list[tuple[float, float, int, int | None]] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    wall_offset = time.time() - time.monotonic()

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (i := slots.get()) is not None:
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(
                {
                    "to": f"Attendee {i} <attendee{i}@example.com>",
                    "subject": f"Your registration #{i}",
                    "text": f"Hello Attendee {i},\n\nyour registration is confirmed.\n",
                    "html": f"<p>Hello Attendee {i},</p><p>your registration is confirmed.</p>",
                }
            )
            sent = time.monotonic()
            try:
                conn.request(
                    "POST",
                    "/api/v1/messages",
                    body=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"bench-{i}",
                    },
                )
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, payload = 0, b"{}"
            latency = time.monotonic() - sent
            message_id = json.loads(payload or b"{}").get("id") if status == 202 else None
            with lock:
                results.append((sent + wall_offset, latency, status, message_id))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--app-workers", type=int, default=2)
    parser.add_argument("--app-threads", type=int, default=4)
    parser.add_argument("--rq-workers", type=int, default=3)
    parser.add_argument(
        "--fork",
        action="store_true",
        help="RQ's default forking worker (a process per job) instead of --no-fork",
    )
    args = parser.parse_args(argv)

    services = Services(args.app_workers, args.app_threads, args.rq_workers, not args.fork)
    try:
        token = services.start()
        # Warm up: the first requests open database connections in every app process.
        drive(services.app_port, token, 20, 1, 4)
        warm = _received(services.stand_in_port)
        results = drive(services.app_port, token, args.rate, args.seconds, args.connections)
        accepted = {mid: sent for sent, _, status, mid in results if status == 202 and mid}
        deadline = time.monotonic() + 60
        received: dict[int, float] = {}
        while time.monotonic() < deadline:
            received = _received(services.stand_in_port)
            if set(accepted) <= set(received):
                break
            time.sleep(0.5)
    finally:
        services.stop()

    latencies = [latency * 1000 for _, latency, status, _ in results if status == 202]
    errors = sum(1 for _, _, status, _ in results if status != 202)
    by_status = Counter(status for _, _, status, _ in results if status != 202)
    handoffs = [received[mid] - sent for mid, sent in accepted.items() if mid in received]
    missing = len([mid for mid in accepted if mid not in received])
    print(
        f"api: {len(results)} requests at {args.rate:g}/s for {args.seconds:g} s, "
        f"{len(latencies)} accepted (202), {errors} errors {dict(by_status)}; "
        f"gunicorn {args.app_workers}x{args.app_threads} gthread, {args.rq_workers} RQ workers"
        f"{' (forking)' if args.fork else ' (--no-fork)'}, "
        f"PostgreSQL, Redis; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"api accept latency: p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {_percentile(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms "
        "(target p95 <= 20 ms)"
    )
    if handoffs:
        print(
            f"api hand-off to the stand-in: p50 {statistics.median(handoffs) * 1000:.0f} ms, "
            f"p95 {_percentile(handoffs, 0.95) * 1000:.0f} ms, "
            f"max {max(handoffs) * 1000:.0f} ms, {missing} not received "
            f"(target p95 <= 1000 ms; {len(warm)} warm-up mails excluded)"
        )


if __name__ == "__main__":
    main()
