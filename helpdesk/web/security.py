"""Response headers that every page carries."""

from __future__ import annotations

from flask import Flask, Response

# No inline script or style anywhere: everything comes from our own origin. Mail HTML is
# shown in sandboxed srcdoc iframes, which inherit this policy.
_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(*, remote_images: bool = False) -> str:
    """The pages' policy; ``remote_images`` lets mail images load (the agent asked to)."""
    directives = dict(_DIRECTIVES)
    if remote_images:
        directives["img-src"] += " https: http:"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CONTENT_SECURITY_POLICY = content_security_policy()
# For files served to be shown (inline images): nothing in them may run or load.
MEDIA_SECURITY_POLICY = "default-src 'none'; sandbox"


def register(app: Flask) -> None:
    """Add the security headers to every response that does not set its own."""

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
