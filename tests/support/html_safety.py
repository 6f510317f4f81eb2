"""An independent check that sanitised HTML holds nothing a browser would run or fetch.

The HTML is parsed the way a browser parses it (html5lib implements the WHATWG
algorithm), so markup that only turns dangerous after re-parsing (mutation XSS) is
judged by what it becomes, not by what the sanitiser emitted.
"""

from __future__ import annotations

import html5lib
import tinycss2

HTML_NAMESPACE = "http://www.w3.org/1999/xhtml"
# Elements that run code, load documents or plugins, submit data or restyle the page.
EXECUTABLE_ELEMENTS = frozenset(
    {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form"}
    | {"input", "button", "select", "textarea", "option", "link", "meta", "base", "template"}
    | {"portal", "isindex", "keygen", "video", "audio", "source", "track", "image", "svg"}
    | {"math", "animate", "set", "handler", "listener", "xml", "import", "noembed", "param"}
)
# Attributes whose value is fetched or navigated to.
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "background", "poster", "data", "srcset"}
    | {"lowsrc", "dynsrc", "ping", "cite", "longdesc", "usemap", "codebase", "classid"}
    | {"manifest", "icon", "profile", "xlink:href", "xml:base", "archive", "code"}
)
DANGEROUS_ATTRIBUTES = frozenset({"srcdoc", "http-equiv", "is", "xmlns", "autofocus"})
SAFE_SCHEMES = {"src": {"http", "https", "cid"}, "href": {"http", "https", "mailto", "cid"}}
SAFE_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc"})


def unsafe_constructs(html: str) -> list[str]:
    """Describe everything in ``html`` that could execute or fetch; empty when safe."""
    document = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=True)
    problems: list[str] = []
    for element in document.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if namespace and namespace != HTML_NAMESPACE:
            problems.append(f"foreign element {tag}")
        if name.lower() in EXECUTABLE_ELEMENTS:
            problems.append(f"element <{name}>")
        for attribute, value in element.attrib.items():
            problems.extend(_attribute_problems(name, attribute, value))
    return problems


def _attribute_problems(element: str, attribute: str, value: str) -> list[str]:
    """What is wrong with one attribute, if anything."""
    name = attribute.rpartition("}")[2].lower() if attribute.startswith("{") else attribute
    name = name.lower()
    where = f"<{element} {name}={value!r}>"
    if name.startswith("on"):
        return [f"event handler {where}"]
    if name in DANGEROUS_ATTRIBUTES or attribute.startswith("{"):
        return [f"dangerous attribute {where}"]
    if name in URL_ATTRIBUTES:
        allowed = SAFE_SCHEMES.get(name, set())
        if browser_scheme(value) not in allowed:
            return [f"url {where}"]
    if name == "style":
        return [f"style {where}: {problem}" for problem in css_problems(value)]
    return []


def browser_scheme(value: str) -> str | None:
    """The scheme a browser resolves: controls and whitespace inside it are ignored."""
    cleaned = "".join(char for char in value if ord(char) > 0x20 and char not in "\x7f")
    scheme, sep, _rest = cleaned.partition(":")
    if not sep or not scheme or any(char in scheme for char in "/?#"):
        return None
    return scheme.lower()


def css_problems(style: str) -> list[str]:
    """url(), non-colour functions, escapes spelling them, and legacy script hooks in CSS."""
    problems = []
    stack = list(tinycss2.parse_declaration_list(style))
    while stack:
        node = stack.pop()
        kind = getattr(node, "type", "")
        if kind == "declaration":
            if node.lower_name in ("behavior", "-moz-binding"):
                problems.append(f"property {node.name}")
            stack.extend(node.value)
        elif kind == "url":
            problems.append("url()")
        elif kind == "function":
            if node.lower_name not in SAFE_CSS_FUNCTIONS:
                problems.append(f"function {node.name}()")
            stack.extend(node.arguments)
        elif kind in ("() block", "[] block", "{} block"):
            stack.extend(node.content)
        elif kind == "at-rule":
            problems.append(f"@{node.at_keyword}")
    return problems
