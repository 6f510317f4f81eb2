"""The OpenAPI document: valid OpenAPI 3.1, and it describes the routes the app serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_the_openapi_document_is_valid_and_public(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_described_and_every_described_route_exists(client, app):
    document = client.get("/api/openapi.json").json
    described = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served.update((path, m) for m in rule.methods - {"HEAD", "OPTIONS"})
    assert described == served
