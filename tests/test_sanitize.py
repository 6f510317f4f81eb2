"""sanitize_html and block_remote_images: nothing runs, nothing loads unasked, layout stays."""

from __future__ import annotations

from collections import Counter

import html5lib
import pytest

from helpdesk.inbound.parse import parse
from helpdesk.sanitize import block_remote_images, sanitize_html, url_scheme
from tests.support.corpus import read, xss_vectors
from tests.support.html_safety import unsafe_constructs

VECTORS = xss_vectors()


def elements(html: str) -> Counter[str]:
    """How many of each element a browser would build from ``html``."""
    document = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    return Counter(element.tag for element in document.iter() if isinstance(element.tag, str))


# The DOMPurify vectors (xss/dompurify/README.txt): each payload as a mail body.


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=lambda index: f"vector-{index}")
def test_dompurify_vector_comes_out_inert(index: int) -> None:
    payload = VECTORS[index]["payload"]
    cleaned = sanitize_html(payload)
    assert unsafe_constructs(cleaned) == []
    assert unsafe_constructs(block_remote_images(cleaned)) == []


def test_the_corpus_has_all_dompurify_vectors() -> None:
    assert len(VECTORS) == 223


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="jav&#x61;script:alert(1)">x</a>',
        '<a href=" java\tscript:alert(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<img src="x.gif">',
        '<p style="background:url(http://x.example/a.png)">x</p>',
        '<p style="width:expr\\65ssion(alert(1))">x</p>',
        '<svg><a xlink:href="javascript:alert(1)">x</a></svg>',
        '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
        "<style>@import 'http://x.example/a.css';</style>",
        '<form action="https://x.example"><input name="q"></form>',
    ],
)
def test_the_safety_check_itself_catches_dangerous_html(html: str) -> None:
    assert unsafe_constructs(html) != []


# What is removed.


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<style>p { color: red }</style>",
        "<title>Title</title>",
        "<svg><text>drawn</text></svg>",
        "<math><mi>x</mi></math>",
        "<iframe src='https://x.example'>frame</iframe>",
        "<object data='x.swf'>plugin</object>",
        "<embed src='x.swf'>",
        "<select><option>choice</option></select>",
    ],
)
def test_dropped_elements_take_their_content_with_them(html: str) -> None:
    assert sanitize_html(f"<p>kept</p>{html}") == "<p>kept</p>"


def test_forms_and_inputs_are_removed_but_their_text_stays() -> None:
    cleaned = sanitize_html('<form action="https://x.example"><b>Name</b> <input name="q"></form>')
    assert cleaned == "<b>Name</b> "


def test_event_handlers_and_unknown_attributes_are_removed() -> None:
    cleaned = sanitize_html('<p onclick="x()" onmouseover="y()" id="clobber" data-x="1">t</p>')
    assert cleaned == "<p>t</p>"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "jav&#x61;script:alert(1)",
        "&#106;avascript:alert(1)",
        "jav&#x09;ascript:alert(1)",
        " \njavascript:alert(1)",
        "java\x00script:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "/relative/path",
        "//evil.example/x",
    ],
)
def test_links_keep_only_safe_schemes(href: str) -> None:
    assert sanitize_html(f'<a href="{href}">x</a>') == "<a>x</a>"


@pytest.mark.parametrize(
    "href",
    ["https://pycon.example/", "http://pycon.example/", "mailto:info@pycon.example", "cid:a"],
)
def test_allowed_links_survive(href: str) -> None:
    assert sanitize_html(f'<a href="{href}">x</a>') == f'<a href="{href}">x</a>'


@pytest.mark.parametrize(
    ("src", "kept"),
    [
        ("https://pycon.example/logo.png", True),
        ("http://pycon.example/logo.png", True),
        ("cid:logo@pycon", True),
        ("data:image/png;base64,iVBORw0KGgo=", False),
        ("mailto:x@example.com", False),
        ("javascript:alert(1)", False),
        ("logo.png", False),
    ],
)
def test_image_sources(src: str, kept: bool) -> None:
    cleaned = sanitize_html(f'<img src="{src}" alt="logo">')
    assert ("src=" in cleaned) is kept
    assert 'alt="logo"' in cleaned


def test_css_keeps_formatting_and_drops_urls_and_positioning() -> None:
    style = (
        "color: #333; font-family: Arial; font-size: 14px; background: url(https://x.example/a.png);"
        " background-color: rgb(255, 255, 255); position: fixed; width: expression(alert(1));"
        " padding: 4px 8px; behavior: url(x.htc); list-style-image: url(b.png)"
    )
    cleaned = sanitize_html(f'<div style="{style}">x</div>')
    assert "color: #333" in cleaned
    assert "font-family: Arial" in cleaned
    assert "background-color: rgb(255, 255, 255)" in cleaned
    assert "padding: 4px 8px" in cleaned
    for gone in ("url", "position", "expression", "behavior", "list-style-image"):
        assert gone not in cleaned


def test_css_escapes_cannot_spell_url() -> None:
    cleaned = sanitize_html('<p style="background: \\75 rl(https://x.example/a.png)">x</p>')
    assert cleaned == "<p>x</p>"


@pytest.mark.parametrize("html", ["", "plain text, no markup"])
def test_text_without_markup_is_unchanged(html: str) -> None:
    assert sanitize_html(html) == html


# What mail formatting survives.


def test_mail_formatting_survives() -> None:
    html = (
        '<table width="600" cellpadding="4" border="0"><tr><td bgcolor="#eeeeee" '
        'style="color: #222222; font-size: 14px">'
        '<font face="Arial" color="red" size="2">Hi</font> <b>bold</b> <i>it</i> <u>u</u>'
        '<ul><li>one</li></ul><ol start="3"><li>three</li></ol>'
        '<img src="cid:logo" alt="Logo" width="100" height="40">'
        '<a href="https://pycon.example/cfp">CFP</a><blockquote>quoted</blockquote>'
        "<pre>code</pre><h2>Title</h2><hr></td></tr></table>"
    )
    # The parser adds the implied <tbody>; bleach ends each style with ";".
    expected = html.replace("<tr>", "<tbody><tr>").replace("</table>", "</tbody></table>")
    assert sanitize_html(html) == expected.replace('14px"', '14px;"')


@pytest.mark.parametrize(
    "relative",
    [
        "mail-parser/mail_test_5",
        "mail-parser/mail_test_13",
        "mail-parser/mail_test_10",
        "mail-parser/mail_test_8",
        "flanker/bounce/office365.eml",
    ],
)
def test_real_mail_html_keeps_its_layout(relative: str) -> None:
    html = parse(read(relative)).html
    assert html is not None
    cleaned = sanitize_html(html)
    before, after = elements(html), elements(cleaned)
    for tag in ("table", "tr", "td", "a", "img", "p", "ul", "li", "font", "b", "strong", "br"):
        assert after[tag] == before[tag], tag
    assert ' style="' in cleaned
    assert unsafe_constructs(cleaned) == []


# Remote images.


def test_remote_images_are_parked_until_asked_for() -> None:
    html = (
        '<img src="https://t.example/pixel.gif" alt="a"><img src="cid:logo">'
        '<img src="HTTP://T.EXAMPLE/b.png">'
    )
    assert block_remote_images(html) == (
        '<img alt="a" data-remote-src="https://t.example/pixel.gif"><img src="cid:logo">'
        '<img data-remote-src="HTTP://T.EXAMPLE/b.png">'
    )


def test_parked_address_cannot_be_smuggled_in() -> None:
    html = '<img data-remote-src="javascript:alert(1)" src="cid:x"><img data-remote-src="x">'
    assert block_remote_images(html) == '<img src="cid:x"><img>'


def test_blocking_also_sanitises() -> None:
    cleaned = block_remote_images('<p onclick="x()">hi<script>alert(1)</script></p>')
    assert cleaned == "<p>hi</p>"


@pytest.mark.parametrize(
    ("value", "scheme"),
    [
        ("https://x", "https"),
        ("  JavaScript:alert(1)", "javascript"),
        ("jav&#x61;script:x", "javascript"),
        ("java\tscript:x", "javascript"),
        ("cid:a", "cid"),
        ("/path", None),
        ("", None),
    ],
)
def test_url_scheme_sees_what_a_browser_sees(value: str, scheme: str | None) -> None:
    assert url_scheme(value) == scheme
