"""Error pages: the same page for "missing" and "not yours to see"."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def register(app: Flask) -> None:
    """Render HTTP errors as our pages (or JSON under /api/)."""

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return _render(400, "The form expired or was not sent from this site. Please try again.")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code == 404:
            # One text for "missing" and "forbidden": existence is not revealed.
            return _render(404, "There is nothing here, or it is not yours to see.")
        return _render(error.code or 500, error.description or "")

    @app.errorhandler(500)
    def _server_error(error):
        return _render(500, "The error was logged.")


def _render(code: int, description: str):
    title = TITLES.get(code, "Error")
    if _wants_json():
        return jsonify(error=title.lower(), reason=description), code
    return render_template(
        "errors/error.html", code=code, title=title, description=description
    ), code
