"""Which MIME parts of a parsed mail are its body, and which are attachments."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

# Deeper than any real mail nests its body; past it a subtree is only attachments.
MAX_BODY_DEPTH = 64


@dataclass
class Layout:
    """The chosen plain and HTML body parts and every other leaf, in mail order."""

    plain: Message | None = None
    html: Message | None = None
    leaves: list[Message] = field(default_factory=list)


def layout(message: Message) -> Layout:
    """Choose the body parts of ``message`` and list every other leaf part."""
    plain, html = _bodies(message, 0)
    chosen = {id(part) for part in (plain, html) if part is not None}
    leaves = [part for part in leaf_parts(message) if id(part) not in chosen]
    return Layout(plain=plain, html=html, leaves=leaves)


def leaf_parts(message: Message) -> list[Message]:
    """Every leaf in order; an encapsulated message (message/*) counts as one leaf."""
    leaves: list[Message] = []
    stack = [message]
    while stack:
        part = stack.pop()
        if is_container(part):
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            stack.extend(reversed(children))
        else:
            leaves.append(part)
    return leaves


def is_container(part: Message) -> bool:
    """Whether a part is a multipart whose children were parsed (not message/*)."""
    return part.get_content_maintype() != "message" and part.is_multipart()


def is_attachment(part: Message) -> bool:
    """Whether the sender marked the part as a file: disposition attachment or a name."""
    disposition = str(part.get("content-disposition", ""))
    content_type = str(part.get("content-type", ""))
    # Cheap test first: most parts have no parameters that could name a file.
    if "name" not in disposition.lower() and "name" not in content_type.lower():
        return part.get_content_disposition() == "attachment"
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_param("filename", header="content-disposition") is not None or (
        part.get_param("name") is not None
    )


def _bodies(part: Message, depth: int) -> tuple[Message | None, Message | None]:
    """The (plain, html) body parts found in ``part``, either possibly None."""
    if depth > MAX_BODY_DEPTH or is_attachment(part):
        return None, None
    content_type = part.get_content_type()
    if part.get_content_maintype() == "message":
        return None, None
    if not part.is_multipart():
        if content_type == "text/plain":
            return part, None
        if content_type == "text/html":
            return None, part
        if part.get_content_maintype() == "multipart":
            # A multipart whose boundary is missing: its text is all there is to show.
            return part, None
        return None, None
    children = [child for child in part.get_payload() if isinstance(child, Message)]
    if content_type == "multipart/alternative":
        return _alternative(children, depth)
    if content_type == "multipart/related":
        root = _related_root(part, children)
        return _bodies(root, depth + 1) if root is not None else (None, None)
    for child in children:
        plain, html = _bodies(child, depth + 1)
        if plain is not None or html is not None:
            return plain, html
    return None, None


def _alternative(children: list[Message], depth: int) -> tuple[Message | None, Message | None]:
    """The first plain and the last (richest) HTML rendering among the alternatives."""
    plain = html = None
    for child in children:
        child_plain, child_html = _bodies(child, depth + 1)
        # Compare with None: a Message without headers is falsy.
        if plain is None:
            plain = child_plain
        if child_html is not None:
            html = child_html
    return plain, html


def _related_root(part: Message, children: list[Message]) -> Message | None:
    """The root of a multipart/related: the one named by start=, else the first (RFC 2387)."""
    start = part.get_param("start")
    if isinstance(start, str) and start.strip():
        wanted = start.strip().strip("<>")
        for child in children:
            if str(child.get("content-id", "")).strip().strip("<>") == wanted:
                return child
    return children[0] if children else None
