"""Raw IMAP fetch throughput and IDLE latency against a private Dovecot.

Appends corpus mails (cycled up to --count) to a fresh account, then times
``fetch_once`` into a handler that only counts, for several batch sizes and
after-import actions; then measures how long a mail appended while ``run_forever``
sits in IDLE takes to reach the handler.

    .venv/bin/python bench/imap_fetch.py [--count 2000] [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpdesk.inbound.fetch import fetch_once  # noqa: E402
from helpdesk.inbound.mailbox import FetchedMail, MailboxConfig, MemoryCheckpoint  # noqa: E402
from helpdesk.inbound.watch import run_forever  # noqa: E402
from tests.support.dovecot import DovecotServer  # noqa: E402

CORPUS_FOLDERS = ("talon", "django-helpdesk", "email-reply-parser", "cpython-email", "flanker")
MAX_MAIL_BYTES = 20_000
# Throwaway accounts on a private server that lives as long as the run.
PASSWORD = "bench-password"  # noqa: S105


def corpus_mails(corpus: Path) -> list[bytes]:
    """Small mails from the shared corpus (as listed in each folder's INDEX.tsv)."""
    mails = []
    for folder in CORPUS_FOLDERS:
        index = corpus / folder / "INDEX.tsv"
        if not index.exists():
            continue
        with open(index, newline="") as rows:
            for row in csv.DictReader(rows, delimiter="\t"):
                if int(row["bytes"]) <= MAX_MAIL_BYTES and row["mbox_from"] == "False":
                    mails.append((corpus / folder / row["file"]).read_bytes())
    if not mails:
        raise SystemExit(f"no corpus mails found under {corpus}")
    return mails


class Counter:
    """A handler that counts mails and bytes."""

    def __init__(self) -> None:
        self.mails = 0
        self.bytes = 0

    def __call__(self, mail: FetchedMail) -> None:
        self.mails += 1
        self.bytes += len(mail.raw)


def measure_fetch(
    server: DovecotServer, user: str, batch_size: int, after_import: str, tls: str = "none"
) -> None:
    """Time one fetch_once of the whole folder and print messages/s."""
    config = MailboxConfig(
        name=f"bench-{batch_size}-{after_import}-{tls}",
        host=server.host,
        port=server.tls_port if tls == "implicit" else server.port,
        tls=tls,  # type: ignore[arg-type]
        username=user,
        password=PASSWORD,
        after_import=after_import,
        ca_file=server.ca_file,
    )
    counter = Counter()
    started = time.perf_counter()
    fetch_once(config, MemoryCheckpoint(), counter, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    print(
        f"  batch {batch_size:>4}  tls={tls:<8} after_import={after_import:<6} "
        f"{counter.mails} mails {counter.bytes / 1e6:.1f} MB in {elapsed:.2f} s: "
        f"{counter.mails / elapsed:,.0f} msg/s, {counter.bytes / 1e6 / elapsed:.1f} MB/s"
    )


def measure_idle(server: DovecotServer, user: str, samples: int) -> None:
    """Append mails one by one while run_forever idles; print arrival latencies."""
    config = MailboxConfig(
        name="bench-idle",
        host=server.host,
        port=server.port,
        tls="none",
        username=user,
        password=PASSWORD,
    )
    arrived = threading.Condition()
    seen: list[int] = []
    passes: list[int] = []

    def handle(mail: FetchedMail) -> None:
        """Note the mail's arrival."""
        with arrived:
            seen.append(mail.uid)
            arrived.notify_all()

    def health(report) -> None:
        """Note the end of a pass."""
        with arrived:
            passes.append(report.handled)
            arrived.notify_all()

    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(config, MemoryCheckpoint(), handle, stop, health)
    )
    thread.start()
    latencies = []
    try:
        with arrived:
            arrived.wait_for(lambda: passes, 10)
        for n in range(samples):
            count = len(passes)
            started = time.perf_counter()
            uid = server.append(user, b"Subject: idle %d\r\n\r\nhello\r\n" % n)
            with arrived:
                if not arrived.wait_for(lambda uid=uid: uid in seen, 30):
                    raise SystemExit(f"mail {uid} did not arrive")
                latencies.append(time.perf_counter() - started)
                # Wait for the end of the pass, after which the watcher idles again.
                arrived.wait_for(lambda count=count: len(passes) > count, 10)
    finally:
        stop.set()
        thread.join()
    print(
        f"  {samples} mails: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (append to handler, while idle)"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--idle-samples", type=int, default=20)
    args = parser.parse_args()

    mails = corpus_mails(args.corpus)
    with DovecotServer() as server:
        server.add_user("bench", PASSWORD)
        started = time.perf_counter()
        server.append_many("bench", itertools.islice(itertools.cycle(mails), args.count))
        elapsed = time.perf_counter() - started
        print(f"appended {args.count} mails ({len(mails)} distinct) in {elapsed:.1f} s")
        print("fetch_once throughput:")
        for batch_size in (1, 10, 100, 500):
            measure_fetch(server, "bench", batch_size, "leave")
        measure_fetch(server, "bench", 100, "leave", tls="implicit")
        measure_fetch(server, "bench", 100, "flag")
        server.add_user("idle", PASSWORD)
        print("IDLE latency:")
        measure_idle(server, "idle", args.idle_samples)


if __name__ == "__main__":
    main()
