"""Sandboxed Jinja rendering of mail templates that organisers and committees write."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from helpdesk import resource_dir


class TemplateProblem(ValueError):
    """A mail template does not compile or render; the message says where and why."""


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    # StrictUndefined: a misspelt variable is an error, never an empty string in a mail.
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@lru_cache(maxsize=256)
def _compile(source: str):
    return _environment().from_string(source)


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render template ``source`` with ``context`` in the sandbox."""
    try:
        return _compile(source).render(context)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateProblem(f"{error.message or error}{where}") from error
    except OverflowError as error:
        # The sandbox refuses huge ranges with OverflowError, not a TemplateError.
        raise TemplateProblem(str(error)) from error


def default_template(name: str) -> str:
    """The text of a built-in mail template from templates/mail/."""
    return (resource_dir("templates") / "mail" / name).read_text()
