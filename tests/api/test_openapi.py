"""The OpenAPI document describes every endpoint, parameter, response and error."""

from __future__ import annotations

from typing import Any

import pytest

from certgate.service.health import FindingCode
from certgate.web.security import SESSION_COOKIE
from tests.api.client import Server, ok

EXPECTED = {
    ("GET", "/certificates"),
    ("POST", "/certificates"),
    ("GET", "/certificates/{reference}"),
    ("PATCH", "/certificates/{reference}"),
    ("DELETE", "/certificates/{reference}"),
    ("PUT", "/certificates/{reference}/chain"),
    ("PUT", "/certificates/{reference}/addresses"),
    ("GET", "/certificates/{reference}/export"),
    ("POST", "/certificates/{reference}/renewal-request"),
    ("POST", "/certificates/{reference}/replace"),
    ("POST", "/certificates/{reference}/export"),
    ("GET", "/requests"),
    ("POST", "/requests"),
    ("GET", "/requests/{reference}"),
    ("GET", "/requests/{reference}/csr"),
    ("DELETE", "/requests/{reference}"),
    ("POST", "/imports"),
    ("GET", "/addresses"),
    ("POST", "/addresses"),
    ("GET", "/addresses/{address}"),
    ("PUT", "/addresses/{address}"),
    ("PATCH", "/addresses/{address}"),
    ("DELETE", "/addresses/{address}"),
    ("POST", "/addresses/{address}/test"),
    ("GET", "/tls"),
    ("PUT", "/tls"),
    ("GET", "/email"),
    ("PUT", "/email"),
    ("POST", "/email/test"),
    ("GET", "/acme/account"),
    ("PUT", "/acme/account"),
    ("GET", "/acme/orders"),
    ("POST", "/acme/orders"),
    ("GET", "/acme/orders/{order_id}"),
    ("POST", "/acme/renewals"),
    ("GET", "/status"),
    ("GET", "/nodes"),
    ("DELETE", "/nodes/{name}"),
    ("GET", "/support-package"),
    ("GET", "/me"),
    ("PUT", "/me/password"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{username}"),
    ("DELETE", "/users/{username}"),
    ("PUT", "/users/{username}/password"),
    ("GET", "/tokens"),
    ("POST", "/tokens"),
    ("GET", "/tokens/{token_id}"),
    ("DELETE", "/tokens/{token_id}"),
    ("GET", "/audit"),
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document(primary: Server) -> dict[str, Any]:
    with primary.client(token="") as anonymous:
        found: dict[str, Any] = ok(anonymous.get("/openapi.json"))
    return found


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path.removeprefix("/api/v1")): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_every_endpoint_is_documented(document: dict[str, Any]) -> None:
    assert set(_operations(document)) == EXPECTED
    assert document["openapi"].startswith("3.")


def test_every_operation_documents_auth_and_its_problems(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["token"]["description"],
    }
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == (SESSION_COOKIE)
    for (method, path), operation in _operations(document).items():
        label = f"{method} {path}"
        assert operation["summary"] and operation["tags"], label
        assert {"token": []} in operation["security"] and {"session": []} in operation["security"]
        responses = operation["responses"]
        assert "HTTPValidationError" not in str(responses), label
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}
                assert response["description"], label
        assert "401" in responses and "431" in responses, label
        if method != "GET":
            assert "403" in responses, label
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            assert "X-CSRF-Token" in names, label
        if "{" in path or operation.get("parameters") or "requestBody" in operation:
            assert "422" in responses, label
        if "{" in path:
            assert "404" in responses, label
        if "requestBody" in operation:
            assert "413" in responses, label
        successes = [status for status in responses if status.startswith("2")]
        assert len(successes) == 1 and responses[successes[0]]["description"], label


def test_problem_schema_and_formats(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"field", "errors", "entries"} <= set(problem["properties"])
    assert "HTTPValidationError" not in schemas
    export = document["paths"]["/api/v1/certificates/{reference}/export"]["post"]
    assert set(export["responses"]["200"]["content"]) == {
        "application/pkix-cert",
        "application/pkcs8",
        "application/x-pem-file",
        "application/x-pkcs12",
        "application/x-pkcs7-certificates",
    }
    # Secrets travel in bodies, never in the URL.
    for (_, _), operation in _operations(document).items():
        for parameter in operation.get("parameters", []):
            assert "pass" not in parameter["name"].lower()
    imports = document["paths"]["/api/v1/imports"]["post"]["requestBody"]
    assert "multipart/form-data" in imports["content"]


def test_the_status_document_names_every_finding_diagnostics_can_report(
    document: dict[str, Any],
) -> None:
    described = document["components"]["schemas"]["ApplianceStatus"]["properties"]["diagnostics"]
    assert [code for code in FindingCode if code.value not in described["description"]] == []
