"""Google Groups: the real sender behind a rewrite, believed only with DKIM; the footer."""

from __future__ import annotations

import re

import pytest

from helpdesk.inbound.dkim import DkimVerifier, TableLookup
from helpdesk.inbound.groups import identify_sender, strip_group_footer, strip_group_footer_html
from tests.inbound.conftest import SigningKey, make_key, parse_mail, sign

GROUPS = {"program.pycon.test": "program@pycon.test"}
# What Google Groups signs (it leaves X-Original-From out).
GOOGLE_HEADERS = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "x-original-sender",
    "precedence",
    "mailing-list",
    "list-id",
]
FOOTER = (
    "-- \r\n"
    "You received this message because you are subscribed to the Google Groups "
    '"Program" group.\r\n'
    "To unsubscribe from this group and stop receiving emails from it, send an email to "
    "program+unsubscribe@pycon.test.\r\n"
    "To view this discussion visit https://groups.google.com/a/pycon.test/d/msgid/program/"
    "CAF1234%40mail.example.org.\r\n"
)


def rewritten(
    *,
    original_from: str = "Jane Doe <jane@example.org>",
    original_sender: str = "jane@example.org",
    list_id: str = "Program <program.pycon.test>",
    extra: str = "",
) -> bytes:
    """A mail as a Group delivers it after rewriting From for DMARC."""
    return (
        "From: \"'Jane Doe' via Program\" <program@pycon.test>\r\n"
        "To: program@pycon.test\r\n"
        "Subject: Talk proposal\r\n"
        "Date: Tue, 25 Nov 2025 10:00:00 +0100\r\n"
        "Message-ID: <CAF1234@mail.example.org>\r\n"
        "Reply-To: Jane Doe <jane@example.org>\r\n"
        f"X-Original-From: {original_from}\r\n"
        f"X-Original-Sender: {original_sender}\r\n"
        "Precedence: list\r\n"
        "Mailing-list: list program@pycon.test; contact program+owners@pycon.test\r\n"
        f"List-ID: {list_id}\r\n"
        f"{extra}"
        "\r\n"
        "Hello, here is my proposal.\r\n"
        f"{FOOTER}"
    ).encode()


class CountingLookup(TableLookup):
    """A key table that records which keys were asked for."""

    def __init__(self, records: dict[str, str]) -> None:
        super().__init__(records)
        self.asked: list[str] = []

    def __call__(self, name: str) -> bytes | None:
        """The record for ``name``, remembering the question."""
        self.asked.append(name)
        return super().__call__(name)


@pytest.fixture
def keys(dkim_key: SigningKey) -> CountingLookup:
    """Keys for googlegroups.com and pycon.test (the Group's domain) and example.org."""
    return CountingLookup(
        {
            "s1._domainkey.googlegroups.com": dkim_key.txt,
            "s1._domainkey.pycon.test": dkim_key.txt,
            "s1._domainkey.example.org": dkim_key.txt,
        }
    )


def identify(raw: bytes, lookup: TableLookup, groups: dict[str, str] = GROUPS):
    """identify_sender on raw bytes, parsed as the ingester parses them."""
    return identify_sender(raw, parse_mail(raw), groups, DkimVerifier(lookup))


def test_a_rewrite_signed_by_google_groups_resolves_to_the_real_sender(dkim_key, keys):
    raw = sign(rewritten(), dkim_key, "googlegroups.com", GOOGLE_HEADERS)
    identity = identify(raw, keys)
    assert (identity.address, identity.name, identity.verified, identity.via_group) == (
        "jane@example.org",
        "Jane Doe",
        True,
        "program@pycon.test",
    )
    assert identity.reason == "group rewrite verified by DKIM (d=googlegroups.com)"


def test_a_rewrite_signed_by_the_groups_own_domain_is_believed_too(dkim_key, keys):
    raw = sign(rewritten(), dkim_key, "pycon.test", [*GOOGLE_HEADERS, "x-original-from"])
    identity = identify(raw, keys)
    assert identity.verified
    assert identity.address == "jane@example.org"
    assert "d=pycon.test" in identity.reason


def test_an_unsigned_rewrite_is_only_a_claim(keys):
    identity = identify(
        rewritten(original_from="CFO <cfo@pycon.test>", original_sender="cfo@pycon.test"), keys
    )
    assert not identity.verified
    assert (identity.address, identity.claimed_address) == ("program@pycon.test", "cfo@pycon.test")
    assert identity.reason == "no passing DKIM signature of googlegroups.com or pycon.test"


def test_a_forged_sender_breaks_the_signature_and_is_not_believed(dkim_key, keys):
    raw = sign(rewritten(), dkim_key, "googlegroups.com", GOOGLE_HEADERS)
    forged = raw.replace(
        b"X-Original-Sender: jane@example.org", b"X-Original-Sender: cfo@pycon.test"
    )
    identity = identify(forged, keys)
    assert not identity.verified
    assert identity.address == "program@pycon.test"
    assert identity.claimed_address == "cfo@pycon.test"


def test_a_forged_header_the_signature_does_not_cover_is_ignored(dkim_key, keys):
    # Google does not sign X-Original-From: whoever changes it on the way changes
    # nothing, the signed X-Original-Sender still names the author.
    raw = sign(rewritten(), dkim_key, "googlegroups.com", GOOGLE_HEADERS)
    forged = raw.replace(
        b"X-Original-From: Jane Doe <jane@example.org>", b"X-Original-From: CFO <cfo@pycon.test>"
    )
    identity = identify(forged, keys)
    assert identity.verified
    assert identity.address == "jane@example.org"


def test_a_broken_signature_is_not_believed(dkim_key, keys):
    raw = sign(rewritten(), dkim_key, "googlegroups.com", GOOGLE_HEADERS)
    tag = re.search(rb"[\s;]b=", raw)
    assert tag is not None
    broken = raw[: tag.end()] + b"AAAA" + raw[tag.end() + 4 :]
    assert not identify(broken, keys).verified


def test_a_valid_signature_of_a_group_that_is_not_ours_is_not_believed(dkim_key, keys):
    # Anyone can run a Group on googlegroups.com and get its mail signed by Google.
    raw = sign(
        rewritten(list_id="<attackers.googlegroups.com>"),
        dkim_key,
        "googlegroups.com",
        GOOGLE_HEADERS,
    )
    identity = identify(raw, keys)
    assert not identity.verified
    assert identity.via_group is None
    assert identity.reason == "List-Id attackers.googlegroups.com is not one of our groups"


def test_a_signature_of_some_other_domain_does_not_vouch_for_the_group(dkim_key, keys):
    raw = sign(rewritten(), dkim_key, "example.org", GOOGLE_HEADERS)
    assert not identify(raw, keys).verified


def test_a_list_id_added_above_the_signed_one_is_refused(dkim_key, keys):
    # The signature covers the bottom List-ID; a reader taking the first would be fooled.
    raw = sign(
        rewritten(list_id="<attackers.googlegroups.com>"),
        dkim_key,
        "googlegroups.com",
        GOOGLE_HEADERS,
    )
    doubled = b"List-ID: <program.pycon.test>\r\n" + raw
    identity = identify(doubled, keys)
    assert not identity.verified
    assert identity.reason == "more than one List-Id header"


def test_a_signature_not_covering_the_list_id_does_not_prove_the_group(dkim_key, keys):
    headers = [h for h in GOOGLE_HEADERS if h != "list-id"]
    identity = identify(sign(rewritten(), dkim_key, "googlegroups.com", headers), keys)
    assert not identity.verified
    assert "covers neither" in identity.reason


def test_mail_without_a_rewrite_is_its_sender_and_costs_no_dkim_check(keys):
    raw = (
        b"From: Jane Doe <jane@example.org>\r\nTo: program@pycon.test\r\nSubject: Hi\r\n"
        b"X-Original-Sender: jane@example.org\r\nList-ID: <program.pycon.test>\r\n\r\nHi\r\n"
    )
    identity = identify(raw, keys)
    assert (identity.address, identity.name, identity.verified) == (
        "jane@example.org",
        "Jane Doe",
        True,
    )
    assert identity.via_group == "program@pycon.test"
    assert identity.reason == "no group rewrite"
    assert keys.asked == []


def test_mail_without_a_from_address_identifies_nobody(keys):
    identity = identify(b"Subject: Hi\r\nX-Original-Sender: jane@example.org\r\n\r\nHi\r\n", keys)
    assert (identity.address, identity.verified, identity.reason) == ("", False, "no From address")


def test_a_rewrite_whose_only_claim_points_back_at_the_group_has_no_claim(keys):
    raw = (
        b"From: \"'Jane Doe' via Program\" <program@pycon.test>\r\nReply-To: program@pycon.test\r\n"
        b"List-ID: <program.pycon.test>\r\nSubject: Hi\r\n\r\nHi\r\n"
    )
    identity = identify(raw, keys)
    assert not identity.verified
    assert identity.claimed_address is None
    assert identity.reason == "group rewrite without an original sender header"


def test_a_second_key_for_the_same_domain_does_not_help_a_forger(dkim_key):
    # The forger signs with their own key under Google's name; the published key differs.
    forger = make_key(1024)
    lookup = CountingLookup({"s1._domainkey.googlegroups.com": dkim_key.txt})
    raw = sign(
        rewritten(original_sender="cfo@pycon.test"), forger, "googlegroups.com", GOOGLE_HEADERS
    )
    assert not identify(raw, lookup).verified


# -- the footer -----------------------------------------------------------------------------


def test_strip_group_footer_removes_the_plain_footer_and_its_delimiter():
    text = "Hello, here is my proposal.\n\nJane\n" + FOOTER.replace("\r\n", "\n")
    assert strip_group_footer(text) == "Hello, here is my proposal.\n\nJane\n"


def test_strip_group_footer_handles_older_and_german_footers():
    older = (
        "Hi\n-- \nYou received this message because you are subscribed to the Google Groups "
        '"Program" group.\nTo post to this group, send email to program@pycon.test.\n'
        "To unsubscribe from this group and stop receiving emails from it, send an email to "
        "program+unsubscribe@pycon.test.\nFor more options, visit "
        "https://groups.google.com/a/pycon.test/d/optout.\n"
    )
    german = (
        "Hallo\n\n-- \nSie erhalten diese Nachricht, weil Sie Mitglied der Google Groups-Gruppe "
        '"Programm" sind.\nWenn Sie sich von dieser Gruppe abmelden und keine E-Mails mehr von '
        "dieser Gruppe erhalten möchten, senden Sie eine E-Mail an "
        "programm+unsubscribe@pycon.test.\n"
    )
    assert strip_group_footer(older) == "Hi\n"
    assert strip_group_footer(german) == "Hallo\n"


def test_strip_group_footer_keeps_text_that_only_quotes_or_continues_after_a_footer():
    quoted = "My answer.\n\n> -- \n> " + FOOTER.replace("\r\n", "\n> ")
    assert strip_group_footer(quoted) == quoted
    continued = (
        "Hello\n" + FOOTER.replace("\r\n", "\n") + "\n" + "More of my own text follows here.\n" * 12
    )
    assert strip_group_footer(continued) == continued
    assert strip_group_footer("No footer here.\n") == "No footer here.\n"


def test_strip_group_footer_html_removes_the_footer_and_closes_open_elements():
    html = (
        '<html><body><div dir="ltr">Hello, here is my proposal.</div>\n'
        "<p></p>\n\n-- <br />\nYou received this message because you are subscribed to the "
        "Google Groups &quot;Program&quot; group.<br />\nTo unsubscribe from this group and stop "
        "receiving emails from it, send an email to "
        '<a href="mailto:program+unsubscribe@pycon.test">'
        "program+unsubscribe@pycon.test</a>.<br />\nTo view this discussion visit "
        '<a href="https://groups.google.com/a/pycon.test/d/msgid/program/CAF1234">'
        "https://groups.google.com/a/pycon.test/d/msgid/program/CAF1234</a>.<br />\n"
        "</body></html>\n"
    )
    assert strip_group_footer_html(html) == (
        '<html><body><div dir="ltr">Hello, here is my proposal.</div>\n<p></p>\n\n</body></html>'
    )


def test_strip_group_footer_html_keeps_a_footer_followed_by_real_content():
    html = (
        "<blockquote>You received this message because you are subscribed to the Google Groups "
        "&quot;Program&quot; group.<br />send an email to program+unsubscribe@pycon.test"
        "</blockquote>" + "<p>My long answer below the quote.</p>" * 40
    )
    assert strip_group_footer_html(html) == html
    assert strip_group_footer_html("<p>Plain</p>") == "<p>Plain</p>"
