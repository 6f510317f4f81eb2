"""Print how classify() agrees with go-sisimai and flufl.bounce, and how long it takes.

Run from the repository: ``.venv/bin/python bench/classify_corpus.py``. The corpus is
read from ``../shared/corpus`` (the repository's parent folder holds ``shared/``).
"""

from __future__ import annotations

import email
import json
import logging
import sys
import time
from email.message import Message
from pathlib import Path

import mailparser

from helpdesk.inbound.classify import MailKind, classify
from helpdesk.inbound.dkim import DkimVerifier, TableLookup
from helpdesk.inbound.groups import identify_sender

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SISIMAI = CORPUS / "sisimai-set-of-emails"
FLUFL = CORPUS / "flufl-bounce"


def parse(raw: bytes) -> Message:
    """Parse as the ingester does; mail-parser fails on a few files after parsing."""
    try:
        return mailparser.parse_from_bytes(raw).message
    except AttributeError:
        return email.message_from_bytes(raw)


def expected_kind(records: list[dict]) -> MailKind:
    """The kind go-sisimai's reasons imply."""
    reasons = {r["reason"] for r in records}
    if reasons in ({"vacation"}, {"delivered"}):
        return MailKind.AUTO_REPLY
    return MailKind.COMPLAINT if reasons == {"feedback"} else MailKind.BOUNCE


def sisimai() -> None:
    """Detection, recipient counts and hard/soft agreement with go-sisimai."""
    with (SISIMAI / "expected-go-sisimai.json").open() as handle:
        expected = json.load(handle)["expected"]
    detected = bounces = counted = with_status = same_class = hard = hard_permanent = 0
    elapsed = 0.0
    for name, records in expected.items():
        message = parse((SISIMAI / "maildir" / "bsd" / name).read_bytes())
        start = time.perf_counter()
        result = classify(message)
        elapsed += time.perf_counter() - start
        kind = expected_kind(records)
        detected += result.kind is kind
        if kind is not MailKind.BOUNCE or result.bounce is None:
            continue
        bounces += 1
        counted += len(result.bounce.recipients) == len(records)
        for ours, theirs in zip(result.bounce.recipients, records, strict=False):
            if theirs["status"]:
                with_status += 1
                same_class += ours.permanent == theirs["status"].startswith("5")
            if theirs["hardbounce"]:
                hard += 1
                hard_permanent += ours.permanent
    total = len(expected)
    print(f"sisimai: {detected}/{total} classified as expected ({detected / total:.1%})")
    print(f"  failed-recipient count matches: {counted}/{bounces} ({counted / bounces:.1%})")
    print(
        f"  permanence = status class: {same_class}/{with_status} ({same_class / with_status:.1%})"
    )
    print(f"  sisimai hard bounces we call permanent: {hard_permanent}/{hard}")
    print(f"  classify incl. report parsing: {elapsed / total * 1000:.2f} ms per mail")


def flufl() -> None:
    """Address and temporary/permanent agreement with flufl.bounce's table."""
    with (FLUFL / "expected-flufl-bounce.json").open() as handle:
        table = json.load(handle)["expected"]
    compared = exact = temporary_agree = 0
    for name, entries in table.items():
        addresses = {a.lower() for e in entries for a in e["failed_addresses"]}
        if not addresses:
            continue
        temporary = next(e["temporary"] for e in entries if e["failed_addresses"])
        result = classify(parse((FLUFL / name).read_bytes()))
        compared += 1
        found = {r.address for r in result.bounce.recipients} if result.bounce else set()
        if found == addresses:
            exact += 1
            temporary_agree += all(r.permanent is not temporary for r in result.bounce.recipients)
    print(f"flufl-bounce: exact failed addresses {exact}/{compared}, ", end="")
    print(f"temporary/permanent agree {temporary_agree}/{exact}")


def personal() -> None:
    """How cheap classify() is on ordinary mail, and what it calls automatic."""
    for folder in ("talon", "django-helpdesk", "cpython-email"):
        rows = (CORPUS / folder / "INDEX.tsv").read_text().splitlines()[1:]
        messages = [parse((CORPUS / folder / row.split("\t")[0]).read_bytes()) for row in rows]
        start = time.perf_counter()
        for _ in range(20):
            kinds = [classify(m).kind for m in messages]
        per_mail = (time.perf_counter() - start) / (20 * len(messages)) * 1e6
        automatic = sum(k is not MailKind.PERSONAL for k in kinds)
        print(f"{folder}: {automatic}/{len(messages)} not personal, {per_mail:.0f} µs per mail")


def dkim() -> None:
    """The cost of identify_sender on a mail without a Group rewrite (no DKIM check)."""
    raw = b"From: Jane <jane@example.org>\r\nTo: info@pycon.test\r\nSubject: Hi\r\n\r\nHi\r\n"
    message = parse(raw)
    verifier = DkimVerifier(TableLookup({}))
    start = time.perf_counter()
    for _ in range(2000):
        identify_sender(raw, message, {}, verifier)
    per_call = (time.perf_counter() - start) / 2000 * 1e6
    print(f"identify_sender without a rewrite: {per_call:.0f} µs per mail")


def main() -> int:
    """Print every figure."""
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 1
    logging.disable(logging.WARNING)
    sisimai()
    flufl()
    personal()
    dkim()
    return 0


if __name__ == "__main__":
    sys.exit(main())
