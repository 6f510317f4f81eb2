"""split_reply / split_html_reply on the talon and email_reply_parser fixtures."""

from __future__ import annotations

import re
import time

import pytest

from helpdesk.inbound.parse import parse
from helpdesk.inbound.quotes import ReplyParts, split_html_reply, split_reply
from tests.support.corpus import CORPUS, read

STANDARD_REPLIES = sorted(path.name for path in (CORPUS / "talon/standard_replies").glob("*.eml"))
HTML_REPLIES = sorted(path.name for path in (CORPUS / "talon/html_replies").glob("*.html"))


def reply(name: str, source: str = "github") -> ReplyParts:
    """split_reply of one email_reply_parser fixture."""
    return split_reply(read(f"email-reply-parser/{source}/{name}.txt").decode("utf-8"))


def squash(text: str) -> str:
    """Text with all whitespace removed, for whitespace-insensitive comparison."""
    return re.sub(r"\s+", "", text)


# talon/README.txt: after quote stripping the plain text is exactly "Hello", unless
# <name>_reply_text exists, whose contents are then expected (signature included).


@pytest.mark.parametrize("name", STANDARD_REPLIES)
def test_talon_standard_replies(name: str) -> None:
    mail = parse(read(f"talon/standard_replies/{name}"))
    parts = split_reply(mail.text)
    assert parts.new == "Hello"
    assert parts.quoted
    expected = CORPUS / "talon/standard_replies" / f"{name.removesuffix('.eml')}_reply_text"
    if expected.exists():
        without_quote = f"{parts.new}\n\n{parts.signature}"
        assert squash(without_quote) == squash(expected.read_text(encoding="utf-8"))


def test_talon_fixtures_are_all_there() -> None:
    assert len(STANDARD_REPLIES) == 12
    assert len(HTML_REPLIES) == 9


# talon/README.txt: the visible reply text of every HTML reply.


@pytest.mark.parametrize("name", HTML_REPLIES)
def test_talon_html_replies(name: str) -> None:
    parts = split_html_reply(read(f"talon/html_replies/{name}").decode("utf-8"))
    assert squash(parts.new) == squash("Hi. I am fine.\n\nThanks,\nAlex")
    assert "How are you?" in parts.quoted


# email-reply-parser/README.txt: the fragments asserted by the upstream test suites
# (github test/email_reply_parser_test.rb, zapier test/test_email_reply_parser.py).


@pytest.mark.parametrize("source", ["github", "zapier"])
def test_simple_body_with_signature(source: str) -> None:
    parts = reply("email_1_1", source)
    assert parts.new.startswith("Hi folks\n\nWhat is the best way to clear a Riak bucket")
    assert parts.new.endswith("I am currently using the Java HTTP API.")
    assert parts.signature.startswith("-Abhishek Kona")
    assert "riak-users mailing list" in parts.signature
    assert parts.quoted == ""


@pytest.mark.parametrize("source", ["github", "zapier"])
def test_bottom_post_keeps_inline_context(source: str) -> None:
    parts = reply("email_1_2", source)
    assert parts.new.startswith("Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:")
    assert "You can list the keys for the bucket" in parts.new
    assert parts.new.endswith('to delete them all individually."')
    assert parts.quoted.startswith(">")
    assert "riak-users mailing list" in parts.signature


@pytest.mark.parametrize("source", ["github", "zapier"])
def test_top_post(source: str) -> None:
    parts = reply("email_1_3", source)
    assert parts.new == "Oh thanks.\n\nHaving the function would be great."
    assert parts.signature.startswith("-Abhishek Kona")
    assert parts.quoted.startswith("On 01/03/11 7:07 PM, Russell Brown wrote:")


def test_date_line_above_the_quote_belongs_to_it() -> None:
    parts = reply("email_1_4")
    assert parts.new == "Awesome! I haven't had another problem with it."
    assert parts.quoted.startswith("On Aug 22, 2011, at 7:37 PM, defunkt")
    assert "Loader" in parts.quoted


def test_complex_body_with_bullets_is_one_fragment() -> None:
    text = read("email-reply-parser/github/email_1_5.txt").decode()
    assert split_reply(text) == ReplyParts(new=text.strip(), quoted="", signature="")


def test_multiline_attribution() -> None:
    parts = reply("email_1_6")
    assert parts.new.startswith("I get proper rendering as well.")
    assert parts.new.endswith("Sent from a magnificent torch of pixels")
    assert parts.quoted.startswith("On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n")
    assert "Was this caching related" in parts.quoted


def test_windows_line_endings() -> None:
    parts = reply("email_1_7")
    assert parts.new == ":+1:"
    assert parts.quoted.startswith("On Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath")
    assert "Steps 0-2" in parts.quoted


def test_inline_replies_stay_visible() -> None:
    parts = reply("email_1_8")
    assert parts.new.startswith("On Tue, Apr 29, 2014 at 4:22 PM, Example Dev")
    assert "I will reply under this one" in parts.new
    assert "> okay?" in parts.new
    assert parts.new.endswith("and under this.")
    assert parts.quoted.startswith(">\n> -- Tim")
    assert parts.signature == "--\nHey there, this is my signature"


@pytest.mark.parametrize(
    ("name", "source", "new"),
    [
        ("correct_sig", "github", "this is an email with a correct -- signature."),
        ("email_2_1", "github", "Outlook with a reply"),
        ("email_2_2", "github", "Outlook with a reply directly above line"),
        ("email_2_3", "github", "Outlook with a reply directly above line"),
        ("email_2_3", "zapier", "Outlook with a reply above headers using unusual format"),
        ("email_iPhone", "github", "Here is another email"),
        ("email_BlackBerry", "github", "Here is another email"),
        ("email_multi_word_sent_from_my_mobile_device", "github", "Here is another email"),
        (
            "email_sent_from_my_not_signature",
            "github",
            "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
        ),
        (
            "email_bullets",
            "github",
            "test 2 this should list second\n\nand have spaces\n\nand retain this formatting"
            "\n\n\n   - how about bullets\n   - and another",
        ),
        ("email_headers_no_delimiter", "zapier", "And another reply!"),
        ("email_gmail", "zapier", "This is a test for inbox replying to a github message."),
        (
            "pathological",
            "github",
            "I think you're onto something. I will try to fix the problem as soon as I\n"
            "get back to a computer.",
        ),
    ],
)
def test_visible_text(name: str, source: str, new: str) -> None:
    assert reply(name, source).new == new


def test_correct_signature_is_split_off() -> None:
    assert reply("correct_sig").signature == "-- \nrick"


@pytest.mark.parametrize("name", ["email_iPhone", "email_BlackBerry"])
def test_mobile_signatures(name: str) -> None:
    assert reply(name).signature.startswith("Sent from my ")


def test_one_is_not_on() -> None:
    parts = reply("email_one_is_not_on")
    assert "One outstanding question" in parts.new
    assert "On Oct 1, 2012, at 11:55 PM, Dave Tapley wrote:" not in parts.new
    assert parts.quoted.startswith("On Oct 1, 2012")


@pytest.mark.parametrize(
    ("name", "source"), [("greedy_on", "github"), ("email_partial_quote_header", "zapier")]
)
def test_greedy_on(name: str, source: str) -> None:
    parts = reply(name, source)
    assert parts.new.startswith("On your remote host you can run:\n\n     telnet 127.0.0.1 52698")
    assert "This should connect to TextMate" in parts.new
    assert parts.quoted.startswith("On 9 Jan 2014, at 2:47, George Plymale wrote:")


def test_signature_delimiter_in_the_middle_of_a_line_is_text() -> None:
    text = read("email-reply-parser/github/email_sig_delimiter_in_middle_of_line.txt").decode()
    assert split_reply(text) == ReplyParts(new=text.strip(), quoted="", signature="")


# talon's other fixtures.


def test_reply_separated_by_a_rule() -> None:
    parts = split_html_reply(read("talon/reply-separated-by-hr.html").decode())
    assert parts.new == "Hi\nthere\nBob"
    assert "Subject: Hello" in parts.quoted


def test_outlook_for_mac_source_section() -> None:
    parts = split_html_reply(read("talon/OLK_SRC_BODY_SECTION.html").decode())
    assert parts.new == "Reply"
    assert parts.quoted.startswith("From: Bob <bob@example.com>")


def test_yahoo_attribution_with_dashes() -> None:
    mail = parse(read("talon/reply-quotations-share-block.eml"))
    parts = split_reply(mail.text)
    assert parts.new.startswith("Hi Katharine.")
    assert parts.quoted.startswith("--- On Wed, 4/4/12, xxx@example.com <xxx@example.com> wrote:")


# Linear time.


def test_long_quote_is_split_in_linear_time() -> None:
    text = read("email-reply-parser/github/email_long_quote.txt").decode()
    started = time.perf_counter()
    parts = split_reply(text)
    assert time.perf_counter() - started < 1.0
    assert parts.new.startswith("Hi folks")
    assert parts.signature.startswith("-Abhishek Kona")


@pytest.mark.parametrize(
    "unit",
    [
        "On Monday, Bob <bob@example.com> wrote:\n> quoted line\n\n",
        "From: a\nSent: b\n",
        "Reply text with a colon at the end:\n\n\n\n",
        "-" * 200 + "\n" + ">" * 200 + "\n",
        "x" * 5000 + ":\n",
    ],
    ids=["attributions", "half-headers", "colons", "rules", "long-lines"],
)
def test_adversarial_input_stays_fast(unit: str) -> None:
    text = unit * (500_000 // len(unit))
    started = time.perf_counter()
    split_reply(text)
    assert time.perf_counter() - started < 5.0


# Edges.


def test_empty_text() -> None:
    assert split_reply("") == ReplyParts(new="", quoted="", signature="")


def test_only_a_quote() -> None:
    assert split_reply("> all quoted\n> still quoted\n") == ReplyParts(
        new="", quoted="> all quoted\n> still quoted", signature=""
    )


def test_forwarded_message_stays_new_text() -> None:
    text = (
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Speaker <s@example.com>\n"
        "Date: Mon, 1 Jan 2024\nSubject: Talk\nTo: program@pycon.example\n\nMy talk proposal.\n"
    )
    assert split_reply(text).new == text.strip()


def test_html_reply_split_uses_blockquotes() -> None:
    html = (
        "<p>Sure, see you there.</p><div>On Mon, Bob wrote:</div><blockquote>Coming?</blockquote>"
    )
    parts = split_html_reply(html)
    assert parts.new == "Sure, see you there."
    assert parts.quoted == "On Mon, Bob wrote:\n\n> Coming?"
