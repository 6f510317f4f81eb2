"""The OpenAPI 3.1 description of the JSON API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from helpdesk.outbound.api_messages import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_KEY_CHARS,
    MAX_RECIPIENTS,
)

bp = Blueprint("openapi", __name__, url_prefix="/api")

_ADDRESSES = {
    "oneOf": [
        {"type": "string", "description": "an address, optionally 'Name <address>'"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


_UNAUTHORIZED = _error("missing, unknown or revoked API key")
_FORBIDDEN = _error("the API key lacks the scope this needs")
_NOT_FOUND = _error("no such resource, or it is not yours to see")

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "error": {"type": "string", "examples": ["invalid", "unauthorized"]},
            "reason": {"type": "string"},
            "field": {
                "type": "string",
                "description": "the request field at fault: to[1], data.name, "
                "attachments[0].content, Idempotency-Key...",
            },
            "scope": {"type": "string"},
            "retry_after": {"type": "integer"},
        },
    },
    "Attachment": {
        "type": "object",
        "required": ["filename", "content"],
        "properties": {
            "filename": {"type": "string", "maxLength": 255},
            "content_type": {"type": "string", "default": "application/octet-stream"},
            "content": {"type": "string", "contentEncoding": "base64"},
        },
    },
    "MessageRequest": {
        "type": "object",
        "description": "Either template (with data) or subject with html and/or text. "
        f"At most {MAX_RECIPIENTS} recipients in to and cc together.",
        "required": ["to"],
        "additionalProperties": False,
        "properties": {
            "to": _ADDRESSES,
            "cc": _ADDRESSES,
            "reply_to": {"type": "string"},
            "from": {
                "type": "string",
                "description": "one of the committees' addresses; default HELPDESK_MAIL_FROM",
            },
            "template": {"type": "string", "description": "the name of a stored mail template"},
            "data": {"type": "object", "description": "the template's variables"},
            "subject": {"type": "string", "maxLength": 998},
            "html": {"type": "string"},
            "text": {"type": "string", "description": "derived from html when left out"},
            "attachments": {
                "type": "array",
                "maxItems": MAX_ATTACHMENTS,
                "description": f"at most {MAX_ATTACHMENT_BYTES} bytes together, decoded",
                "items": {"$ref": "#/components/schemas/Attachment"},
            },
        },
    },
    "MessageAccepted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "const": "queued"},
        },
    },
    "MessageStatus": {
        "type": "object",
        "required": ["id", "status", "events"],
        "properties": {
            "id": {"type": "integer"},
            "status": {
                "type": "string",
                "enum": ["queued", "sending", "sent", "failed", "uncertain", "suppressed"],
            },
            "provider_id": {"type": ["string", "null"]},
            "message_id": {"type": "string"},
            "from": {"type": "string"},
            "to": {"type": "array", "items": {"type": "string"}},
            "cc": {"type": "array", "items": {"type": "string"}},
            "subject": {"type": "string"},
            "error": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "sent_at": {"type": ["string", "null"], "format": "date-time"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {"type": "string"},
                        "email": {"type": "string"},
                        "occurred_at": {"type": ["string", "null"], "format": "date-time"},
                        "reason": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    },
    "Ticket": {
        "type": "object",
        "properties": {
            "number": {"type": "integer"},
            "subject": {"type": "string"},
            "committee": {"type": "string"},
            "status": {"type": "string"},
            "priority": {"type": "string"},
            "assignee": {"type": ["string", "null"]},
            "contact": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "TicketPage": {
        "type": "object",
        "properties": {
            "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "TicketWithMessages": {
        "allOf": [
            {"$ref": "#/components/schemas/Ticket"},
            {
                "type": "object",
                "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
            },
        ]
    },
}


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/messages": {
            "post": {
                "operationId": "sendMessage",
                "summary": "Send a transactional mail",
                "description": "Needs the messages:send scope. The message is written before "
                "its delivery is queued. Limited per API key.",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "the first answer is stored and returned again for the "
                        "same key and body; the same key with another body is a 422",
                        "schema": {"type": "string", "maxLength": MAX_KEY_CHARS},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/MessageRequest"}
                        }
                    },
                },
                "responses": {
                    "202": _json("MessageAccepted", "written and queued"),
                    "400": _error("a body or field of the wrong shape"),
                    "401": _UNAUTHORIZED,
                    "403": _FORBIDDEN,
                    "422": _error("a value that cannot be sent (address, template, sender...)"),
                    "429": {
                        **_error("this API key's rate limit is used up"),
                        "headers": {
                            "Retry-After": {
                                "description": "seconds to wait",
                                "schema": {"type": "integer"},
                            }
                        },
                    },
                },
            }
        },
        "/api/v1/messages/{message_id}": {
            "get": {
                "operationId": "getMessage",
                "summary": "A message's status and provider events",
                "description": "Only messages sent with a key of the same agent.",
                "parameters": [
                    {
                        "name": "message_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "200": _json("MessageStatus", "the message"),
                    "401": _UNAUTHORIZED,
                    "403": _FORBIDDEN,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tickets": {
            "get": {
                "operationId": "listTickets",
                "summary": "Tickets the key's agent may see, newest activity first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "committee", "in": "query", "schema": {"type": "string"}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("TicketPage", "one page of tickets"),
                    "400": _error("a bad parameter"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tickets/{number}": {
            "get": {
                "operationId": "getTicket",
                "summary": "One ticket with its messages",
                "parameters": [
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "200": _json("TicketWithMessages", "the ticket"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the JSON API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Helpdesk API",
            "version": "1",
            "description": "Tickets and transactional mail. Authenticate with "
            "'Authorization: Bearer <API key>'.",
        },
        "servers": [{"url": current_app.config["HELPDESK_BASE_URL"]}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document (public: it describes, it grants nothing)."""
    return jsonify(openapi_document())
