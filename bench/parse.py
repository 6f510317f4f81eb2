"""How fast parse() is next to mail-parser alone, over every mail of the shared corpus.

Run from the repository root:  .venv/bin/python -m bench.parse [--rounds 6]

Each round runs every mail file through ``mailparser.parse_from_bytes`` and through
``helpdesk.inbound.parse.parse``, one after the other per mail and in alternating order
from round to round; the median rates and the geometric mean of the per-round ratios
are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import statistics
import time
from collections.abc import Callable

import mailparser

from helpdesk.inbound.parse import NotMail, parse
from tests.support.corpus import mail_files


def mail_parser_alone(raw: bytes) -> None:
    """The baseline: mail-parser's own parse of the bytes."""
    # A few corpus mails trip mail-parser's analysis; they are timed all the same.
    with contextlib.suppress(Exception):
        mailparser.parse_from_bytes(raw)


def helpdesk_parse(raw: bytes) -> None:
    """Our parse, which includes mail-parser's."""
    with contextlib.suppress(NotMail):
        parse(raw)


def timed_round(mails: list[bytes], swap: bool) -> tuple[float, float]:
    """Seconds spent by mail-parser alone and by parse() over ``mails``.

    The two run back to back on each mail, so load from other processes on the
    machine falls on both alike; ``swap`` alternates which goes first.
    """
    runs: list[Callable[[bytes], None]] = [mail_parser_alone, helpdesk_parse]
    if swap:
        runs.reverse()
    spent = {mail_parser_alone: 0.0, helpdesk_parse: 0.0}
    gc.collect()
    for raw in mails:
        for run in runs:
            started = time.perf_counter()
            run(raw)
            spent[run] += time.perf_counter() - started
    return spent[mail_parser_alone], spent[helpdesk_parse]


def main() -> None:
    """Print both rates and their ratio."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=6, help="even, to balance the order")
    rounds = options.parse_args().rounds
    # mail-parser logs a warning for every part type it does not handle; writing those
    # out would be what the benchmark measured.
    logging.disable(logging.WARNING)
    files = mail_files()
    mails = [path.read_bytes() for path in files]
    size = sum(len(raw) for raw in mails)
    print(f"{len(mails)} files, {size / 1e6:.1f} MB, {rounds} rounds")
    baseline, ours = [], []
    for number in range(1, rounds + 1):
        base_seconds, own_seconds = timed_round(mails, swap=number % 2 == 0)
        baseline.append(len(mails) / base_seconds)
        ours.append(len(mails) / own_seconds)
        print(
            f"  round {number}: mail-parser {baseline[-1]:6.0f}/s   parse() {ours[-1]:6.0f}/s"
            f"   ratio {ours[-1] / baseline[-1]:.2f}"
        )
    ratios = [own / base for base, own in zip(baseline, ours, strict=True)]
    print(f"mail-parser alone: {statistics.median(baseline):6.0f} messages/s (median)")
    print(f"parse():           {statistics.median(ours):6.0f} messages/s (median)")
    # Within a round both see the same machine load, but whichever runs second on a
    # mail finds the stdlib's boundary regexes already compiled; the geometric mean
    # over rounds of alternating order cancels that advantage.
    print(f"ratio parse()/mail-parser: {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
