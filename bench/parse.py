"""How fast parse() is next to mail-parser alone, over every mail of the shared corpus.

Run from the repository root:  .venv/bin/python -m bench.parse [--rounds 5]

Each round runs every mail file through ``mailparser.parse_from_bytes`` and then
through ``helpdesk.inbound.parse.parse``; the median rate of the rounds is reported.
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


def rate(run: Callable[[bytes], None], mails: list[bytes]) -> float:
    """Messages per second for one pass over ``mails``."""
    gc.collect()
    started = time.perf_counter()
    for raw in mails:
        run(raw)
    return len(mails) / (time.perf_counter() - started)


def main() -> None:
    """Print both rates and their ratio."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
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
        baseline.append(rate(mail_parser_alone, mails))
        ours.append(rate(helpdesk_parse, mails))
        print(f"  round {number}: mail-parser {baseline[-1]:7.0f}/s   parse() {ours[-1]:7.0f}/s")
    base, own = statistics.median(baseline), statistics.median(ours)
    print(f"mail-parser alone: {base:7.0f} messages/s (median)")
    print(f"parse():           {own:7.0f} messages/s (median)")
    print(f"ratio parse()/mail-parser: {own / base:.2f}")


if __name__ == "__main__":
    main()
