"""Readable plain text from mail HTML: paragraphs, line breaks, bullets, quotes, link targets."""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

# Elements whose content is never text a reader should see.
_SKIP = frozenset(
    {"head", "script", "style", "title", "template", "iframe", "object", "embed", "applet"}
    | {"svg", "math", "xml", "select", "noembed", "noframes"}
)
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "dl", "ul", "ol"}
    | {"figure", "address", "fieldset"}
)
_BLOCKS = frozenset(
    {"div", "li", "tr", "dt", "dd", "center", "section", "article", "aside", "header"}
    | {"footer", "main", "nav", "form", "caption", "figcaption", "details", "summary"}
    | {"thead", "tbody", "tfoot", "hr", "body"}
)
_WHITESPACE = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_LINK_SCHEMES = ("http://", "https://")
_RULE = "-" * 10


def html_to_text(html: str) -> str:
    """Render mail HTML as plain text a person can read (quotes prefixed with "> ")."""
    if not html or not html.strip():
        return ""
    # huge_tree lifts libxml2's nesting limit from 256 to 2048 levels; text nested
    # deeper than that (only hostile mail does it) is left out of the rendering.
    parser = lxml_html.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, huge_tree=True
    )
    try:
        root = lxml_html.document_fromstring(html.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, ValueError):
        # Nothing parseable, e.g. a document of nothing but comments.
        return ""
    writer = _Writer()
    writer.walk(root)
    return writer.result()


class _Writer:
    """Accumulates lines while walking the tree, honouring block and quote structure."""

    def __init__(self) -> None:
        """An empty page: no lines, no open line, no quote or list nesting."""
        self.lines: list[str] = []
        self.current: list[str] = []
        self.prefix = ""
        self.open = False
        self.breaks = 0
        self.quote_depth = 0
        self.closed_depth = 0  # quote depth of the last finished line
        self.pre_depth = 0
        self.lists: list[list[int]] = []  # [kind, counter]; kind 1 = ordered
        self.links: list[tuple[str, list[str]]] = []
        self.cells = 0

    def walk(self, root: etree._Element) -> None:
        """Visit every node without recursion (mail HTML can nest thousands deep)."""
        stack: list[tuple[etree._Element, bool]] = [(root, False)]
        while stack:
            element, closing = stack.pop()
            if closing:
                self.end(element)
                self.text(element.tail)
                continue
            tag = element.tag.lower() if isinstance(element.tag, str) else ""
            if not tag or tag in _SKIP:
                self.text(element.tail)
                continue
            self.start(element, tag)
            self.text(element.text)
            stack.append((element, True))
            stack.extend((child, False) for child in reversed(element))

    def start(self, element: etree._Element, tag: str) -> None:
        """Open an element: breaks, bullets, quote and list nesting."""
        if tag in ("ul", "ol") and self.lists:
            self.block(1)  # a nested list continues its parent item
        elif tag in _PARAGRAPHS:
            self.block(2)
        elif tag in _BLOCKS:
            self.block(1)
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        elif tag in ("ul", "ol"):
            self.lists.append([1 if tag == "ol" else 0, _start_number(element)])
        elif tag == "li":
            self.bullet()
        elif tag == "tr":
            self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self.text("  ", literal=True)
            self.cells += 1
        elif tag == "br":
            self.line_break()
        elif tag == "hr":
            self.text(_RULE, literal=True)
            self.block(1)
        elif tag == "img":
            alt = _WHITESPACE.sub(" ", element.get("alt") or "").strip()
            if alt:
                self.text(f"[{alt}]", literal=True)
        elif tag == "a":
            self.links.append((element.get("href") or "", []))

    def end(self, element: etree._Element) -> None:
        """Close an element opened by start()."""
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag == "a" and self.links:
            href, words = self.links.pop()
            self.link_target(href.strip(), "".join(words).strip())
        if tag in ("ul", "ol") and len(self.lists) > 1:
            self.block(1)
        elif tag in _PARAGRAPHS:
            self.block(2)
        elif tag in _BLOCKS:
            self.block(1)
        if tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()

    def link_target(self, href: str, label: str) -> None:
        """Show where a web link goes, unless its text already says so."""
        if not href.lower().startswith(_LINK_SCHEMES) or not label:
            return
        if href.rstrip("/") in label or label.rstrip("/") == href.rstrip("/"):
            return
        self.text(f" ({href})", literal=True)

    def bullet(self) -> None:
        """Start a list item line with "- " or its number."""
        self.block(1)
        if self.lists and self.lists[-1][0]:
            marker = f"{self.lists[-1][1]}. "
            self.lists[-1][1] += 1
        else:
            marker = "- "
        self.text(marker, literal=True)

    def block(self, breaks: int) -> None:
        """End the open line; the next text starts ``breaks`` newlines later."""
        self.close()
        self.breaks = max(self.breaks, breaks)

    def line_break(self) -> None:
        """A <br>: end the line, or add an empty one when none is open."""
        if self.open:
            self.close()
        else:
            self.begin()
            self.close()

    def text(self, value: str | None, literal: bool = False) -> None:
        """Add text to the open line, collapsing whitespace outside <pre>."""
        if not value:
            return
        if self.pre_depth and not literal:
            first, *rest = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.append(first)
            for line in rest:
                self.close()
                self.begin()
                self.append(line)
            return
        if not literal:
            value = _WHITESPACE.sub(" ", value)
        if not self.open:
            value = value.lstrip()
            if not value:
                return
        elif value.startswith(" ") and (not self.current or self.current[-1].endswith(" ")):
            value = value.lstrip()
        if value:
            self.append(value)

    def append(self, value: str) -> None:
        """Append to the open line (opening one first), also to any link label."""
        if not self.open:
            self.begin()
        self.current.append(value)
        for _href, words in self.links:
            words.append(value)

    def begin(self) -> None:
        """Open a new line after the pending breaks, with the quote and list prefix."""
        quote = "> " * self.quote_depth
        if self.lines:
            # A blank line between two quote levels belongs to the outer one.
            gap = ("> " * min(self.quote_depth, self.closed_depth)).rstrip()
            self.lines.extend([gap] * max(0, self.breaks - 1))
        self.breaks = 0
        self.prefix = quote + "  " * max(0, len(self.lists) - 1)
        self.current = []
        self.open = True

    def close(self) -> None:
        """Finish the open line, if any."""
        if self.open:
            self.lines.append(self.prefix + "".join(self.current))
            self.closed_depth = self.quote_depth
            self.open = False
            self.current = []

    def result(self) -> str:
        """The finished text: trailing spaces trimmed, at most one blank line in a row."""
        self.close()
        text = _TRAILING_SPACE.sub("", "\n".join(self.lines))
        return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _start_number(element: etree._Element) -> int:
    """An ordered list's first number (its start= attribute, else 1)."""
    try:
        return int(element.get("start") or 1)
    except ValueError:
        return 1
