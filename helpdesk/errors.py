"""Errors that services raise for callers (views, CLI, API) to show to people."""

from __future__ import annotations


class ServiceError(ValueError):
    """A request that cannot be done as asked; the message says why, for humans."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    """The thing asked for does not exist, or the caller may not see it."""
