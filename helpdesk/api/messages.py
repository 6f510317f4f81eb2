"""Transactional mail API: ``POST /api/v1/messages`` and ``GET /api/v1/messages/<id>``.

Keys need the ``messages:send`` scope (reading a message back also accepts
``messages:read``). Sending is limited per key: the key's own rate, else
``HELPDESK_API_RATE``; past it the answer is 429 with Retry-After.
"""

from __future__ import annotations

import math
import time

from flask import current_app, g, jsonify, request
from limits import parse_many

from helpdesk.api import bp
from helpdesk.api.auth import api_error, token_required
from helpdesk.extensions import limiter
from helpdesk.outbound.api_acceptance import accept_message
from helpdesk.outbound.api_messages import RequestProblem, message_status

SEND_SCOPE = "messages:send"
READ_SCOPE = "messages:read"


def _missing_scope(*accepted: str):
    if set(accepted) & set(g.api_key.scopes):
        return None
    return api_error(
        403, "forbidden", f"this API key lacks the {accepted[0]} scope", scope=accepted[0]
    )


def _over_rate():
    """A 429 answer when the key used up one of its budgets, else None."""
    rate = g.api_key.rate_limit or current_app.config["HELPDESK_API_RATE"]
    strategy = limiter.limiter
    key = str(g.api_key.id)
    for item in parse_many(rate):
        if not strategy.hit(item, "api-messages", key):
            reset_at = strategy.get_window_stats(item, "api-messages", key).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            response = api_error(
                429, "rate limited", f"this API key may send {item} requests", retry_after=wait
            )
            response.headers["Retry-After"] = str(wait)
            return response
    return None


def _problem(problem: RequestProblem):
    return api_error(problem.status, "invalid", problem.reason, field=problem.field)


@bp.post("/messages")
@token_required
def send_message():
    """Accept a transactional mail: 202 with its id once it is written and queued."""
    refused = _missing_scope(SEND_SCOPE) or _over_rate()
    if refused is not None:
        return refused
    try:
        answer = accept_message(
            g.api_key.id,
            g.api_key.user_id,
            request.get_data(cache=False),
            request.headers.get("Idempotency-Key"),
        )
    except RequestProblem as problem:
        return _problem(problem)
    response = jsonify(answer.body)
    response.status_code = answer.status
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/messages/{answer.body['id']}"
    return response


@bp.get("/messages/<int:message_id>")
@token_required
def get_message(message_id: int):
    """The status of a message this key's agent sent, with its provider events."""
    refused = _missing_scope(SEND_SCOPE, READ_SCOPE)
    if refused is not None:
        return refused
    status = message_status(g.api_key.user_id, message_id)
    if status is None:
        return api_error(404, "not found", "no such message, or it is not yours to see")
    return jsonify(status)
