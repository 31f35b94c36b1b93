"""Schemathesis against the live OpenAPI document, both APIs with an owner's token.

It must find no server error and no response that breaks the document.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate as validate_openapi
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from broadsheet.accounts.models import Role
from broadsheet.accounts.services import create_token
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db
from tests.conftest import NOW
from tests.counters import SCHEMATHESIS_CASES


@pytest.fixture
def api_schema(app: Flask, make_post: Any, make_user: Any, author: Any) -> Any:
    other = make_user(name="Lena Fischer", email="lena@example.com")
    for number in range(6):
        make_post(
            f"Post number {number}",
            tags=["Flask", "SQL", "#internal"][: number % 3 + 1],
            authors=[author, other][: number % 2 + 1],
            published_at=NOW - timedelta(days=number),
            featured=number == 2,
        )
    make_post("Not yet", status=PostStatus.DRAFT)
    owner = make_user(Role.OWNER, email="owner@example.com")
    _token, secret = create_token(db.session, owner, label="schemathesis", now=NOW)
    db.session.commit()
    app.config["TEST_TOKEN"] = secret
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


def test_the_openapi_document_is_valid_as_a_whole(client: Any) -> None:
    # Every $ref resolves, every operation is well formed: what client generators need.
    validate_openapi(client.get("/api/openapi.json").get_json())


def test_schemathesis_finds_nothing_to_warn_about_in_the_document(api_schema: Any) -> None:
    # A warning means part of the API goes untested (an unresolvable $ref skips a
    # response's validation): it fails here as an error does below.
    warnings = [f"{w.kind}: {w.message}" for w in api_schema.iter_schema_warnings()]
    assert warnings == []


def test_admin_writes_document_the_if_match_header_they_require(client: Any) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for method in ["patch", "delete"]:
        operation = paths["/api/v1/admin/posts/{post_id}/"][method]
        (if_match,) = [p for p in operation["parameters"] if p["name"] == "If-Match"]
        assert if_match["required"] is True
        assert if_match["in"] == "header"
        assert if_match["schema"]["pattern"]
        assert {"412", "428"} <= set(operation["responses"])


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_openapi_document(case: Any) -> None:
    SCHEMATHESIS_CASES[case.operation.label] += 1
    # What we hold the API to: no server error, and every response (status, content type,
    # headers, body) as the document says.  Two checks about requests are left out: a schema
    # cannot say "a cursor this API gave out" (a 422 is right there), and unknown query
    # parameters are ignored on purpose (cache busters); the token header is always sent.
    token = case.operation.schema.app.config["TEST_TOKEN"]
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
