"""Split a reply into its new text, the quoted history and the signature, for display.

The approach follows GitHub's email_reply_parser: quoted blocks, signatures and quoted
history at the end of a reply are hidden, anything the sender wrote in between stays
visible (inline replies keep their context). On top of that it knows Outlook and webmail
header blocks, "-----Original Message-----" and translated "wrote:" lines, and treats a
reply written under a single quote (bottom-posting) as new text plus history.

Every line is examined a bounded number of times with anchored, length-capped rules, so
the work is linear in the size of the text. The full text is always kept elsewhere;
these parts only decide what is shown first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from helpdesk.html_text import html_to_text
from helpdesk.inbound import quote_rules as rules

_NEWLINES = re.compile(r"\r\n?")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_TEXT, _QUOTE, _SIGNATURE, _HISTORY = "text", "quote", "signature", "history"
# How far above a quote an attribution may start ("On <date>, <name>\n<address>\nwrote:").
_ATTRIBUTION_LINES = 3


@dataclass(frozen=True)
class ReplyParts:
    """A reply's parts: what the sender wrote now, what they quoted, their signature."""

    new: str
    quoted: str
    signature: str


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text reply into new text, quoted history and signature."""
    lines = _NEWLINES.sub("\n", text).split("\n")
    kinds = _classify(lines)
    segments = _segments(lines, kinds)

    # Quotes, signatures and history at the end are hidden; the rest is visible.
    cut = len(segments)
    while cut and (segments[cut - 1][0] != _TEXT or _is_blank_segment(segments[cut - 1])):
        cut -= 1
    visible, hidden = segments[:cut], segments[cut:]

    quoted: list[list[str]] = []
    meaningful = [segment for segment in visible if not _is_blank_segment(segment)]
    quote_count = sum(1 for kind, _lines in meaningful if kind == _QUOTE)
    if meaningful and meaningful[0][0] == _QUOTE and quote_count == 1:
        # Written under one quote (bottom-posting): the quote is history, not context.
        quoted.append(meaningful[0][1])
        visible = [segment for segment in visible if segment is not meaningful[0]]

    quoted.extend(chunk for kind, chunk in hidden if kind in (_QUOTE, _HISTORY))
    signature = [chunk for kind, chunk in hidden if kind == _SIGNATURE]
    return ReplyParts(
        new=_tidy([line for _kind, chunk in visible for line in chunk]),
        quoted=_tidy([line for chunk in quoted for line in chunk]),
        signature=_tidy([line for chunk in signature for line in chunk]),
    )


def split_html_reply(html: str) -> ReplyParts:
    """Split an HTML reply: its readable text (quotes rendered as "> ") split as above."""
    return split_reply(html_to_text(html))


def _classify(lines: list[str]) -> list[str]:
    """The kind of every line: text, quote (with its attribution), signature or history."""
    quoted = [rules.is_quoted(line) for line in lines]
    blank = [rules.is_blank(line) for line in lines]
    history = _history_start(lines, quoted, blank)
    kinds = [_TEXT] * history + [_HISTORY] * (len(lines) - history)

    index = 0
    while index < history:
        if not quoted[index]:
            index += 1
            continue
        last = index
        probe = index + 1
        while probe < history and (quoted[probe] or blank[probe]):
            if quoted[probe]:
                last = probe
            probe += 1
        start = _attribution_start(lines, quoted, blank, index)
        kinds[start : last + 1] = [_QUOTE] * (last + 1 - start)
        index = last + 1

    index = 1
    while index < history:
        line = lines[index]
        starts = kinds[index] == _TEXT and (
            rules.is_signature_delimiter(line)
            or (blank[index - 1] and not blank[index] and rules.is_signature_start(line))
        )
        if not starts:
            index += 1
            continue
        while index < history and kinds[index] == _TEXT:
            kinds[index] = _SIGNATURE
            index += 1
    return kinds


def _history_start(lines: list[str], quoted: list[bool], blank: list[bool]) -> int:
    """Where unquoted history begins (Outlook headers, "Original Message", a bare
    "wrote:"); everything from there to the end is quoted history. len(lines) if none."""
    for index, line in enumerate(lines):
        if quoted[index] or blank[index]:
            continue
        if rules.is_original_message(line):
            return index
        if rules.is_rule(line):
            following = _next_filled(blank, index + 1, limit=2)
            if following is not None and _starts_header_block(lines, following):
                return index
        if _starts_header_block(lines, index) and not _after_forward_marker(lines, blank, index):
            return index
        if line.rstrip().endswith(":"):
            start = _attribution_window(lines, quoted, blank, index, dated=False)
            if start is None:
                continue
            following = _next_filled(blank, index + 1, limit=len(lines))
            if following is None or not quoted[following]:
                # "On ... wrote:" with the quote not marked by ">" (some webmails).
                return start
    return len(lines)


def _starts_header_block(lines: list[str], index: int) -> bool:
    """Whether an Outlook/webmail header block begins at ``index``."""
    return rules.header_field(lines[index]) is not None and rules.is_header_block(lines, index)


def _after_forward_marker(lines: list[str], blank: list[bool], index: int) -> bool:
    """Whether the line(s) just above ``index`` say a forwarded message follows."""
    probe = index - 1
    while probe >= 0 and blank[probe] and index - probe <= 2:
        probe -= 1
    return probe >= 0 and rules.is_forward_marker(lines[probe])


def _attribution_start(lines: list[str], quoted: list[bool], blank: list[bool], first: int) -> int:
    """The first line of the quote starting at ``first``, moved up over its attribution."""
    probe = first - 1
    while probe >= 0 and blank[probe]:
        probe -= 1
    if probe < 0 or quoted[probe] or not lines[probe].rstrip().endswith(":"):
        return first
    start = _attribution_window(lines, quoted, blank, probe, dated=True)
    return first if start is None else start


def _attribution_window(
    lines: list[str], quoted: list[bool], blank: list[bool], last: int, *, dated: bool
) -> int | None:
    """The first line of an attribution ending at ``last``, or None if it is not one.

    A "wrote:" line always counts; with ``dated`` a line ending in ":" that carries a date
    or an address counts too (it must then be followed by a quote). Wrapped attributions
    are followed upwards while the lines above look like their beginning.
    """
    line = lines[last]
    if len(line) > rules.MAX_ATTRIBUTION:
        return None
    if not (
        rules.is_reply_attribution(line.strip())
        or (dated and rules.is_dated_attribution(line.strip()))
    ):
        return None
    start = last
    while (
        start > 0
        and last - start < _ATTRIBUTION_LINES - 1
        and not quoted[start - 1]
        and not blank[start - 1]
        and rules.continues_attribution(lines[start - 1])
    ):
        start -= 1
    return start


def _next_filled(blank: list[bool], index: int, *, limit: int) -> int | None:
    """The first non-blank line at or after ``index`` within ``limit`` lines, or None."""
    for probe in range(index, min(len(blank), index + limit + 1)):
        if not blank[probe]:
            return probe
    return None


def _segments(lines: list[str], kinds: list[str]) -> list[tuple[str, list[str]]]:
    """Consecutive lines of one kind, in order."""
    segments: list[tuple[str, list[str]]] = []
    for line, kind in zip(lines, kinds, strict=True):
        if segments and segments[-1][0] == kind:
            segments[-1][1].append(line)
        else:
            segments.append((kind, [line]))
    return segments


def _is_blank_segment(segment: tuple[str, list[str]]) -> bool:
    """A text segment made only of blank lines."""
    return segment[0] == _TEXT and all(rules.is_blank(line) for line in segment[1])


def _tidy(lines: list[str]) -> str:
    """Lines joined, without leading blank lines or trailing whitespace."""
    return _LEADING_BLANK_LINES.sub("", "\n".join(lines)).rstrip()
