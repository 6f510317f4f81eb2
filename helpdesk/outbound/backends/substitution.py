"""Per-recipient substitution tags, with the semantics of SendGrid's personalizations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache


@lru_cache(maxsize=256)
def _pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    # Longest tag first, so "-first_name-" wins over a "-first-" that starts the same way.
    return re.compile("|".join(re.escape(tag) for tag in sorted(tags, key=len, reverse=True)))


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """Replace every occurrence of each tag in ``text`` by its value.

    Tags are plain strings (``-name-``, ``%name%``), matched case-sensitively, as SendGrid
    does. The text is scanned once: a value that happens to contain a tag is left as it is,
    so a recipient's own data can never pull in another tag's value.
    """
    if not substitutions or not text:
        return text
    tags = tuple(tag for tag in substitutions if tag)
    if not tags:
        return text
    return _pattern(tags).sub(lambda match: substitutions[match.group(0)], text)
