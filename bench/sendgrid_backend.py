"""How many recipients per second the SendGrid backend pushes to the local stand-in.

Run from the project root: ``python -m bench.sendgrid_backend [--recipients N]``.
Batches of 1,000 recipients (one request each), newsletter-sized content, per-recipient
substitutions, List-Unsubscribe, Message-ID and custom_args; no rate limit. Prints one
line per run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import time

from helpdesk.outbound.backends import Outcome, OutgoingBatch, Recipient
from helpdesk.outbound.backends.sendgrid import SendGridBackend
from tests.support.sendgrid_server import API_KEY, SendGridStandIn

TEXT = "Dear -name-,\n\n" + "The schedule for the conference is now online. " * 40 + "\n"
HTML = (
    "<html><body><p>Dear -name-,</p>" + "<p>The schedule is now online.</p>" * 60 + "</body></html>"
)


def newsletter(start: int, count: int) -> OutgoingBatch:
    """A batch like a real newsletter batch."""
    return OutgoingBatch(
        from_addr="Conference <news@conference.example>",
        subject="News for -name-",
        text=TEXT,
        html=HTML,
        headers={"Auto-Submitted": "auto-generated"},
        categories=["newsletter"],
        recipients=[
            Recipient(
                to=[f"Attendee {i} <attendee{i}@example.com>"],
                substitutions={"-name-": f"Attendee {i}"},
                headers={
                    "List-Unsubscribe": f"<https://conference.example/u/{i}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    "Message-ID": f"<news-{i}@conference.example>",
                },
                custom_args={"delivery_id": str(i)},
            )
            for i in range(start, start + count)
        ],
    )


def run(recipients: int, batch_size: int) -> float:
    """Send ``recipients`` in batches; return recipients per second."""
    with SendGridStandIn() as stand_in:
        backend = SendGridBackend(API_KEY, host=stand_in.url, timeout=30)
        batches = [newsletter(s, batch_size) for s in range(0, recipients, batch_size)]
        started = time.perf_counter()
        for batch in batches:
            results = backend.send(batch)
            if any(r.outcome != Outcome.ACCEPTED for r in results):
                raise SystemExit(f"not accepted: {results[0]}")
        elapsed = time.perf_counter() - started
        assert len(stand_in.recipients_snapshot()) == recipients
    return recipients / elapsed


def main() -> None:
    """Print recipients/second for a few runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = []
    for n in range(args.runs):
        rate = run(args.recipients, args.batch_size)
        rates.append(rate)
        print(f"run {n + 1}: {rate:,.0f} recipients/s")
    print(f"median: {statistics.median(rates):,.0f} recipients/s (batches of {args.batch_size})")


if __name__ == "__main__":
    main()
