"""Mail HTML made safe to show agents: bleach with a mail-formatting allow-list.

``sanitize_html`` keeps what mail uses for layout (tables, fonts, lists, images, inline
styles) and drops everything that can run code or reach out: scripts, styles sheets,
event handlers, forms, frames, plugins, SVG and MathML, any URL that is not
http/https/mailto/cid, and any CSS ``url()``. ``block_remote_images`` then parks remote
image addresses until an agent asks for them. ``html_to_text`` lives in html_text.py and
is re-exported here for callers that think of it as part of preparing mail HTML.
"""

from __future__ import annotations

import html as html_entities
import re
import threading
from collections.abc import Iterator
from functools import lru_cache

import tinycss2
from bleach import Cleaner
from bleach.css_sanitizer import CSSSanitizer
from bleach.html5lib_shim import BleachHTMLParser, Filter

from helpdesk.html_text import html_to_text

__all__ = ["block_remote_images", "html_to_text", "sanitize_html"]

ALLOWED_TAGS = frozenset(
    {"a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big"}
    | {"blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd"}
    | {"del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li"}
    | {"main", "mark", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span"}
    | {"strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead"}
    | {"time", "tr", "tt", "u", "ul", "var", "wbr"}
)
# Dropped together with everything inside them: their content is code, styling or
# embedded documents, never text meant for the reader.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "title", "head", "template", "iframe", "frame", "frameset"}
    | {"object", "embed", "applet", "noembed", "noframes", "svg", "math", "xml", "select"}
)
_GLOBAL_ATTRIBUTES = frozenset({"style", "class", "title", "dir", "lang", "align", "valign"})
_TAG_ATTRIBUTES = {
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height", "border", "hspace", "vspace"}),
    "table": frozenset(
        {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "summary"}
    ),
    "td": frozenset({"width", "height", "colspan", "rowspan", "bgcolor", "nowrap", "scope"}),
    "th": frozenset({"width", "height", "colspan", "rowspan", "bgcolor", "nowrap", "scope"}),
    "tr": frozenset({"bgcolor", "height"}),
    "col": frozenset({"span", "width"}),
    "colgroup": frozenset({"span", "width"}),
    "font": frozenset({"color", "face", "size"}),
    "ol": frozenset({"start", "type", "reversed"}),
    "ul": frozenset({"type"}),
    "li": frozenset({"value", "type"}),
    "hr": frozenset({"width", "size", "noshade", "color"}),
    "time": frozenset({"datetime"}),
    "abbr": frozenset({"title"}),
}
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "cid"})
_IMAGE_SCHEMES = frozenset({"http", "https", "cid"})
_REMOTE_SCHEMES = frozenset({"http", "https"})
ALLOWED_CSS_PROPERTIES = frozenset(
    {"color", "background-color", "background", "opacity", "visibility", "display"}
    | {"font", "font-family", "font-size", "font-style", "font-variant", "font-weight"}
    | {"line-height", "letter-spacing", "word-spacing", "white-space", "word-break"}
    | {"word-wrap", "overflow-wrap", "text-align", "text-decoration", "text-indent"}
    | {"text-transform", "text-overflow", "vertical-align", "direction", "unicode-bidi"}
    | {"margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "padding"}
    | {"padding-top", "padding-right", "padding-bottom", "padding-left", "border"}
    | {"border-top", "border-right", "border-bottom", "border-left", "border-color"}
    | {"border-style", "border-width", "border-radius", "border-collapse", "border-spacing"}
    | {"border-top-color", "border-right-color", "border-bottom-color", "border-left-color"}
    | {"border-top-style", "border-right-style", "border-bottom-style", "border-left-style"}
    | {"border-top-width", "border-right-width", "border-bottom-width", "border-left-width"}
    | {"width", "height", "min-width", "max-width", "min-height", "max-height", "float"}
    | {"clear", "overflow", "list-style", "list-style-type", "list-style-position"}
    | {"table-layout", "caption-side", "empty-cells", "box-sizing"}
)
# Colour and arithmetic functions only: url(), image-set(), expression(), var() and the
# rest could fetch something or smuggle a value past the allow-list.
_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc"})
# What browsers ignore inside a URL scheme: controls, whitespace, and anything non-ASCII.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f-\xa0\s]+|[^\x00-\x7f]+")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")


def sanitize_html(html: str) -> str:
    """Mail HTML with everything executable or remote-fetching (except images) removed."""
    if not html:
        return ""
    return _cleaner("sanitize").clean(html)


def block_remote_images(html: str) -> str:
    """Move every http(s) image address to data-remote-src so nothing loads by itself.

    The HTML is sanitised on the way, so the result is safe whatever the input was.
    """
    if not html:
        return ""
    return _cleaner("block").clean(html)


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see in an attribute URL (entities, controls ignored)."""
    normalized = _URL_IGNORED.sub("", html_entities.unescape(value)).lower()
    match = _SCHEME.match(normalized)
    return match.group(1) if match else None


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    """The attribute allow-list, with URL schemes checked per attribute."""
    if name not in _GLOBAL_ATTRIBUTES and name not in _TAG_ATTRIBUTES.get(tag, ()):
        return False
    if tag == "a" and name == "href":
        return url_scheme(value) in _LINK_SCHEMES
    if tag == "img" and name == "src":
        return url_scheme(value) in _IMAGE_SCHEMES
    return True


def _allow_attribute_blocking(tag: str, name: str, value: str) -> bool:
    """The same allow-list, plus the parked address of a blocked image."""
    if tag == "img" and name == "data-remote-src":
        return url_scheme(value) in _REMOTE_SCHEMES
    return _allow_attribute(tag, name, value)


class _MailCSSSanitizer(CSSSanitizer):
    """bleach's property allow-list, after dropping declarations that call functions."""

    def sanitize_css(self, style: str) -> str:
        """Keep allowed declarations whose values load nothing and run nothing."""
        if len(style) > _CACHED_STYLE_LENGTH:
            return _sanitize_style(style)
        return _sanitize_short_style(style)


# Mail HTML repeats the same few style attributes on element after element (every cell of
# a newsletter table), so a cache of the short ones saves most of the CSS parsing.
_CACHED_STYLE_LENGTH = 1000
_PROPERTY_FILTER = CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES)


def _sanitize_style(style: str) -> str:
    declarations = tinycss2.parse_declaration_list(style, skip_comments=True, skip_whitespace=True)
    safe = [
        tinycss2.serialize([item])
        for item in declarations
        if item.type == "declaration" and _inert(item.value)
    ]
    return _PROPERTY_FILTER.sanitize_css("; ".join(safe)) if safe else ""


_sanitize_short_style = lru_cache(maxsize=4096)(_sanitize_style)


def _inert(tokens: list) -> bool:
    """Whether CSS value tokens hold no url() and no function outside colours and calc()."""
    stack = list(tokens)
    while stack:
        token = stack.pop()
        if token.type == "url":
            return False
        if token.type == "function":
            if token.lower_name not in _CSS_FUNCTIONS:
                return False
            stack.extend(token.arguments)
        elif token.type in ("() block", "[] block", "{} block"):
            stack.extend(token.content)
    return True


class _DropContent(Filter):
    """Remove the elements in DROPPED_WITH_CONTENT together with all they contain."""

    def __iter__(self) -> Iterator[dict]:
        """The token stream without those elements and their content."""
        depth = 0
        for token in super().__iter__():
            kind = token["type"]
            dropped = kind in ("StartTag", "EndTag", "EmptyTag") and (
                token["name"].lower() in DROPPED_WITH_CONTENT
            )
            if dropped and kind == "StartTag":
                depth += 1
            elif dropped and kind == "EndTag":
                depth = max(0, depth - 1)
            elif not dropped and not depth:
                yield token


class _DropEmptyStyles(Filter):
    """Remove style attributes the CSS sanitiser emptied."""

    def __iter__(self) -> Iterator[dict]:
        """The token stream without empty style attributes."""
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token.get("data"):
                style = token["data"].get((None, "style"))
                if style is not None and not style.strip():
                    token["data"] = {
                        key: value for key, value in token["data"].items() if key != (None, "style")
                    }
            yield token


class _ParkRemoteImages(Filter):
    """Rename an img's http(s) src to data-remote-src (after sanitising)."""

    def __iter__(self) -> Iterator[dict]:
        """The token stream with remote image addresses parked."""
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "img":
                attributes = dict(token["data"])
                attributes.pop((None, "data-remote-src"), None)
                source = attributes.get((None, "src"))
                if source is not None and url_scheme(source) in _REMOTE_SCHEMES:
                    del attributes[(None, "src")]
                    attributes[(None, "data-remote-src")] = source
                token["data"] = attributes
            yield token


class _MailCleaner(Cleaner):
    """bleach's Cleaner, with dropped elements removed before sanitising sees them."""

    def __init__(self, **options: object) -> None:
        """A bleach Cleaner whose parser builds the dropped elements as elements."""
        super().__init__(**options)
        # bleach's parser turns a disallowed tag into text and reads what follows as
        # markup, so the CSS of a <style> or the code of a <script> would survive as
        # text. Let the parser build those elements as a browser would, then drop the
        # whole subtrees from the walk before the sanitiser sees them.
        self.parser = BleachHTMLParser(
            tags=set(self.tags) | DROPPED_WITH_CONTENT,
            strip=self.strip,
            consume_entities=False,
            namespaceHTMLElements=False,
        )
        tree_walker = self.walker
        self.walker = lambda tree: _DropContent(tree_walker(tree))


_local = threading.local()


def _cleaner(kind: str) -> _MailCleaner:
    """One cleaner of each kind per thread (bleach cleaners are not thread-safe)."""
    cleaners = getattr(_local, "cleaners", None)
    if cleaners is None:
        cleaners = _local.cleaners = {}
    if kind not in cleaners:
        blocking = kind == "block"
        cleaners[kind] = _MailCleaner(
            tags=ALLOWED_TAGS,
            attributes=_allow_attribute_blocking if blocking else _allow_attribute,
            protocols=_LINK_SCHEMES,
            strip=True,
            strip_comments=True,
            css_sanitizer=_MailCSSSanitizer(),
            filters=[_DropEmptyStyles, _ParkRemoteImages] if blocking else [_DropEmptyStyles],
        )
    return cleaners[kind]
