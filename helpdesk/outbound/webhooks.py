"""Provider event webhooks: ``POST /webhooks/sendgrid`` (SendGrid's Signed Event Webhook).

The signature over timestamp + raw body is checked before the body is parsed; an
unsigned, altered, stale or wrongly signed request gets 403 and changes nothing. A
correctly signed body that is not a JSON list of events is kept as it came (an
``unparsed`` provider event) and answered 400, so nothing SendGrid sent is lost.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import OperationalError

from helpdesk.extensions import csrf, db
from helpdesk.outbound.events import EventReport, ingest_events, store_unparsed
from helpdesk.outbound.webhook_signature import WebhookVerifier

log = logging.getLogger(__name__)

SQLITE_ATTEMPTS = 8

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


def _error(status: int, error: str, reason: str):
    response = jsonify(error=error, reason=reason)
    response.status_code = status
    return response


@bp.post("/sendgrid")
def sendgrid():
    """Verify, keep and apply a batch of SendGrid events."""
    key = current_app.config.get("HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not key:
        return _error(403, "forbidden", "the event webhook has no verification key configured")
    body = request.get_data(cache=False)
    verifier = WebhookVerifier(key, current_app.config["HELPDESK_SENDGRID_WEBHOOK_TOLERANCE"])
    if not verifier.verify_request(request.headers, body):
        return _error(403, "forbidden", "missing, invalid or expired event webhook signature")
    try:
        entries = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        entries, problem = None, f"the body is not JSON: {error}"
    else:
        problem = None if isinstance(entries, list) else "the body is not a JSON list of events"
    if problem is not None:
        store_unparsed(body, problem)
        db.session.commit()
        log.warning("signed webhook body kept unparsed: %s", problem)
        return _error(400, "invalid", problem)
    return jsonify(_ingest(entries).as_dict())


def _ingest(entries: list) -> EventReport:
    # SQLite refuses a write from a transaction whose snapshot a concurrent writer moved
    # past ("database is locked"); the batch then starts over and finds the other's events.
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    for attempt in range(SQLITE_ATTEMPTS):
        try:
            report = ingest_events(entries)
            db.session.commit()
            return report
        except OperationalError:
            db.session.rollback()
            if not sqlite or attempt == SQLITE_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")
