"""classify() against the shared corpora and the results other bounce parsers expect.

sisimai-set-of-emails comes with go-sisimai's expectations (per failed recipient: status,
reason, hard bounce, but no address); flufl-bounce with Mailman's (failed addresses and
temporary or permanent). The figures asserted here are the ones reached; a file that
newly fails is a regression even when the rate still clears the bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from helpdesk.inbound.bounce_text import notification_text
from helpdesk.inbound.classify import Classification, MailKind, classify
from helpdesk.inbound.headers import addresses_of
from tests.inbound.conftest import corpus_file, corpus_json, mail_files, parse_mail

SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")

# Files go-sisimai counts as bounces that we do not, and why.
SISIMAI_NOT_BOUNCES = {
    # A person forwarding a bounce to someone ("Fwd: Returned mail"): that is mail from a
    # person and must reach an agent.
    "lhost-sendmail-14.eml": MailKind.PERSONAL,
    # KDDI au one net: sender no-reply@, Japanese subject "mail error notification", no
    # report part, no bounce header; nothing but the prose says it is a bounce.
    "lhost-kddi-01.eml": MailKind.PERSONAL,
    "lhost-kddi-02.eml": MailKind.PERSONAL,
    "lhost-kddi-03.eml": MailKind.PERSONAL,
    # fml mailing-list manager answering "you are not a member": list software's mail,
    # not a delivery failure.
    "lhost-fml-02.eml": MailKind.BULK,
    "lhost-fml-03.eml": MailKind.BULK,
}
# Bounces where we name a different number of failed recipients than go-sisimai.
SISIMAI_ADDRESS_DIFFERENCES = {
    # The same recipient is reported twice; we report it once.
    "rhost-cox-01.eml",
    "rfc3464-01.eml",
    # "a@example.com <b@example.net>: malformed address": both addresses are named.
    "lhost-exim-52.eml",
    # fml's notice names list addresses; it is not classified as a bounce (see above).
    "lhost-fml-03.eml",
    # The failed address is the one the bounce was sent to, which we exclude as ours.
    "lhost-qmail-08.eml",
}


@dataclass
class Verdict:
    """One corpus file, how we classified it, and what go-sisimai expects."""

    name: str
    raw: bytes
    message: Message
    result: Classification
    expected: list[dict]


def expected_kind(records: list[dict]) -> MailKind:
    """The kind go-sisimai's reason implies."""
    reasons = {record["reason"] for record in records}
    if reasons == {"vacation"}:
        return MailKind.AUTO_REPLY
    if reasons == {"feedback"}:
        return MailKind.COMPLAINT
    if reasons == {"delivered"}:
        return MailKind.AUTO_REPLY  # a delivery receipt
    return MailKind.BOUNCE


@pytest.fixture(scope="module")
def sisimai() -> list[Verdict]:
    """Every sisimai sample that has an expectation, classified."""
    expected = corpus_json("sisimai-set-of-emails", "expected-go-sisimai.json")["expected"]
    verdicts = []
    for name, records in sorted(expected.items()):
        raw = corpus_file(*SISIMAI, name).read_bytes()
        message = parse_mail(raw)
        verdicts.append(Verdict(name, raw, message, classify(message), records))
    return verdicts


def bounces_of(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts go-sisimai expects to be bounces."""
    return [v for v in verdicts if expected_kind(v.expected) is MailKind.BOUNCE]


def test_sisimai_kinds(sisimai):
    misses = {v.name: v.result.kind for v in sisimai if v.result.kind != expected_kind(v.expected)}
    assert misses == SISIMAI_NOT_BOUNCES
    detected = 1 - len(misses) / len(sisimai)
    assert detected >= 0.989, f"detected {detected:.1%} of {len(sisimai)}"


def test_sisimai_failed_recipients(sisimai):
    compared = [v for v in bounces_of(sisimai) if v.result.kind is MailKind.BOUNCE]
    differences = set()
    for verdict in compared:
        assert verdict.result.bounce is not None, verdict.name
        found = [r.address for r in verdict.result.bounce.recipients]
        # Each address is really in the file, and prose readers never take the bounce's
        # own recipient (us) for the failed one.
        text = verdict.raw.decode("utf-8", "replace") + notification_text(verdict.message)
        assert all(a in text.lower() or "?" in a for a in found), verdict.name
        if verdict.result.bounce.source in ("text", "flufl", "original"):
            assert not set(addresses_of(verdict.message, "To")) & set(found), verdict.name
        if len(found) != len(verdict.expected):
            differences.add(verdict.name)
    assert differences <= SISIMAI_ADDRESS_DIFFERENCES
    matched = 1 - len(differences) / len(compared)
    assert matched >= 0.992, f"addresses matched in {matched:.1%} of {len(compared)}"


def test_sisimai_hard_and_soft(sisimai):
    same_class = with_status = hard = hard_as_permanent = 0
    for verdict in bounces_of(sisimai):
        if verdict.result.bounce is None:
            continue
        for ours, theirs in zip(verdict.result.bounce.recipients, verdict.expected, strict=False):
            if theirs["status"]:
                with_status += 1
                same_class += ours.permanent == theirs["status"].startswith("5")
            if theirs["hardbounce"]:
                hard += 1
                hard_as_permanent += ours.permanent
    # go-sisimai's hard bounces are unknown users and hosts. Two of them carry a 4.x
    # status in the mail itself (postfix-05: "450 4.1.1 User unknown"), which we keep soft.
    assert hard_as_permanent / hard >= 0.989, f"{hard_as_permanent}/{hard}"
    # Permanence follows the status class; sisimai rewrites some expiries as 5.x.
    assert same_class / with_status >= 0.98, f"{same_class}/{with_status}"


def test_sisimai_bounces_point_back_to_the_returned_mail(sisimai):
    found = [
        v for v in bounces_of(sisimai) if v.result.bounce and v.result.bounce.original_message_id
    ]
    assert len(found) / len(bounces_of(sisimai)) >= 0.75


def test_rfc3834_samples_are_auto_replies():
    names = sorted(p.name for p in corpus_file(*SISIMAI).glob("rfc3834-*.eml"))
    assert len(names) == 6
    for name in names:
        result = classify(parse_mail(corpus_file(*SISIMAI, name).read_bytes()))
        assert result.kind is MailKind.AUTO_REPLY, name


def test_arf_samples_are_complaints_naming_who_complained():
    for path in sorted(corpus_file(*SISIMAI).glob("arf-*.eml")):
        result = classify(parse_mail(path.read_bytes()))
        assert result.kind is MailKind.COMPLAINT, path.name
        assert result.complaint is not None


@pytest.mark.parametrize("variant", ["dos", "mac"])
def test_other_line_endings_classify_like_the_originals(variant):
    folder = corpus_file("sisimai-set-of-emails", "maildir", variant)
    for path in sorted(folder.iterdir()):
        result = classify(parse_mail(path.read_bytes()))
        twin = corpus_file(*SISIMAI).joinpath(path.name)
        if not twin.exists():
            # Samples under their old names (lhost-aol-01, ...): all bounces.
            assert result.kind is MailKind.BOUNCE, path.name
            continue
        original = classify(parse_mail(twin.read_bytes()))
        assert result.kind == original.kind, path.name
        if original.bounce is not None and result.bounce is not None:
            assert [r.address for r in result.bounce.recipients] == [
                r.address for r in original.bounce.recipients
            ], path.name


def test_sisimai_samples_that_are_not_bounces():
    folder = ("sisimai-set-of-emails", "maildir", "not")
    for name in ("is-not-bounce-01.eml", "is-not-bounce-02.eml"):
        assert classify(parse_mail(corpus_file(*folder, name).read_bytes())).kind is (
            MailKind.PERSONAL
        )
    # Filed under "not" upstream only because a parser once crashed on it: postmaster's
    # "email bounce notification", rejected for a full mailbox. It is a bounce.
    result = classify(parse_mail(corpus_file(*folder, "rb-issue-368-bug.eml").read_bytes()))
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert [r.address for r in result.bounce.recipients] == ["xxxx@yyyyyy.net"]


# -- flufl.bounce ---------------------------------------------------------------------


def flufl_expectations() -> dict[str, tuple[set[str], bool | None]]:
    """file -> (failed addresses, temporary) from Mailman's detector table."""
    table = corpus_json("flufl-bounce", "expected-flufl-bounce.json")["expected"]
    result = {}
    for name, entries in table.items():
        addresses = {a.lower() for e in entries for a in e["failed_addresses"]}
        temporary = next((e["temporary"] for e in entries if e["failed_addresses"]), None)
        result[name] = (addresses, temporary)
    return result


def test_flufl_bounce_samples_name_the_expected_addresses():
    mismatched, temporary_agree, compared = [], 0, 0
    for name, (addresses, temporary) in flufl_expectations().items():
        if not addresses:
            continue
        result = classify(parse_mail(corpus_file("flufl-bounce", name).read_bytes()))
        if name == "simple_20.txt":
            # "RE: Your message to GPC-talk awaits moderator approval : non remis" from a
            # person's address with no bounce header or report: nothing marks it as a
            # bounce but the French words at the end of a reply's subject.
            assert result.kind is MailKind.PERSONAL
            continue
        assert result.kind is MailKind.BOUNCE, name
        assert result.bounce is not None
        found = {r.address for r in result.bounce.recipients}
        if found != addresses:
            mismatched.append(name)
            continue
        compared += 1
        temporary_agree += all(r.permanent is not temporary for r in result.bounce.recipients)
    assert mismatched == []
    # dsn_02 (4.4.7) and yahoo_01 (4.4.1) carry a 4.x status; flufl calls them permanent.
    assert compared - temporary_agree == 2


def test_flufl_bounce_negative_samples():
    kinds = {
        # A person's reply that flufl's GroupWise detector must not take for a bounce.
        "groupwise_03.txt": MailKind.PERSONAL,
        # An "Auto reply" subject: a vacation notice, not a qmail bounce.
        "qmail_08.txt": MailKind.AUTO_REPLY,
        # Exim DSN that the generic detector must leave to the DSN one: still a bounce.
        "simple_42.txt": MailKind.BOUNCE,
        # An NDR naming no address; the returned mail's To (the list) is all there is.
        "simple_43.txt": MailKind.BOUNCE,
    }
    for name, kind in kinds.items():
        assert classify(parse_mail(corpus_file("flufl-bounce", name).read_bytes())).kind is kind


# -- no false positives ---------------------------------------------------------------

# Files in the ordinary-mail corpora that really are automatic mail.
NOT_PERSONAL = {
    "msg_05.txt": MailKind.BOUNCE,  # a multipart/report delivery-status skeleton
    "msg_16.txt": MailKind.BOUNCE,  # "Delivery Notification: Delivery has failed" (DSN)
    "msg_25.txt": MailKind.BOUNCE,  # "Returned mail: Too many hops" from MAILER-DAEMON
    "msg_42.txt": MailKind.BOUNCE,  # from "Mail Delivery Subsystem", returned mail attached
    "msg_43.txt": MailKind.BOUNCE,  # a Sendmail DSN from MAILER-DAEMON
    "msg_32.txt": MailKind.BULK,  # a mailing-list post, Precedence: bulk
    "msg_33.txt": MailKind.BULK,  # the same post, signed
}


@pytest.mark.parametrize("folder", ["talon", "django-helpdesk", "cpython-email"])
def test_ordinary_mail_is_personal(folder):
    wrong = {}
    for path in mail_files(folder):
        kind = classify(parse_mail(path.read_bytes())).kind
        if kind != NOT_PERSONAL.get(path.name, MailKind.PERSONAL):
            wrong[path.name] = kind
    assert wrong == {}


@pytest.mark.parametrize(
    "folder", ["flanker", "ruby-mail-gem", "mail-parser", "sisimai-set-of-emails", "flufl-bounce"]
)
def test_classify_never_fails_on_malformed_mail(folder):
    for path in mail_files(folder):
        result = classify(parse_mail(Path(path).read_bytes()))
        assert isinstance(result.kind, MailKind), path.name
