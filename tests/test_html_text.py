"""html_to_text: mail HTML as readable plain text."""

from __future__ import annotations

import pytest

from helpdesk.html_text import html_to_text
from tests.support.corpus import read


def test_paragraphs_are_separated_by_a_blank_line() -> None:
    assert html_to_text("<p>One</p><p>Two</p>") == "One\n\nTwo"


def test_divs_and_line_breaks_start_new_lines() -> None:
    assert html_to_text("<div>a<br>b</div><div>c</div>x<br><br>y") == "a\nb\nc\nx\n\ny"


def test_whitespace_is_collapsed_outside_pre() -> None:
    html = "<p>  spread \n\t over&nbsp;&nbsp;lines  </p><pre>  keep\n    this</pre>"
    assert html_to_text(html) == "spread over lines\n\n  keep\n    this"


def test_lists_get_bullets_numbers_and_indentation() -> None:
    html = "<ul><li>one</li><li>two<ol start='3'><li>a</li><li>b</li></ol></li></ul><p>end</p>"
    assert html_to_text(html) == "- one\n- two\n  3. a\n  4. b\n\nend"


def test_link_targets_are_shown_unless_the_text_already_says_them() -> None:
    html = (
        '<a href="https://pycon.example/cfp">the CFP</a>, '
        '<a href="https://pycon.example/">https://pycon.example</a>, '
        '<a href="mailto:info@pycon.example">write to us</a>, '
        '<a href="javascript:alert(1)">evil</a>'
    )
    assert html_to_text(html) == (
        "the CFP (https://pycon.example/cfp), https://pycon.example, write to us, evil"
    )


def test_blockquotes_are_prefixed_like_plain_text_quotes() -> None:
    html = (
        "<p>Reply</p><div>On Monday Bob wrote:</div>"
        "<blockquote>Q1<blockquote>Q2</blockquote></blockquote>"
    )
    assert html_to_text(html) == "Reply\n\nOn Monday Bob wrote:\n\n> Q1\n>\n> > Q2"


def test_tables_put_rows_on_lines() -> None:
    html = "<table><tr><th>Name</th><th>Seats</th></tr><tr><td>Room A</td><td>40</td></tr></table>"
    assert html_to_text(html) == "Name  Seats\nRoom A  40"


def test_invisible_content_is_dropped() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>alert(1)</script><p>Visible</p><!-- hidden --></body></html>"
    )
    assert html_to_text(html) == "Visible"


def test_images_show_their_alt_text() -> None:
    assert html_to_text('<p>Logo: <img src="cid:x" alt="PyCon logo"><img src="y"></p>') == (
        "Logo: [PyCon logo]"
    )


def test_entities_are_decoded() -> None:
    assert html_to_text("<p>Fish &amp; chips &lt;3 &eacute;t&eacute;</p>") == "Fish & chips <3 été"


@pytest.mark.parametrize("html", ["", "   ", "<!-- only a comment -->", "<html></html>"])
def test_empty_documents_give_empty_text(html: str) -> None:
    assert html_to_text(html) == ""


def test_xml_declaration_is_accepted() -> None:
    html = '<?xml version="1.0" encoding="UTF-8"?><html><body><p>Hi</p></body></html>'
    assert html_to_text(html) == "Hi"


def test_deep_nesting_does_not_recurse() -> None:
    html = "<div>" * 2_000 + "deep" + "</div>" * 2_000
    assert html_to_text(html) == "deep"


def test_real_mail_html_reads_well() -> None:
    text = html_to_text(read("talon/html_replies/gmail.html").decode())
    assert text.startswith("Hi. I am fine.\n\nThanks,\nAlex\n\nOn Thu, Jun 26, 2014")
    assert "> Hello! How are you?" in text
