"""The problems in the OpenAPI document: each route's error responses, with the Problem
schema and the problem types each status carries."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response

from certgate.schemas import Problem
from certgate.web.security import CSRF_HEADER

PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/v1"

#: What each status means here, and the problem types it carries (the OpenAPI descriptions).
PROBLEM_STATUSES: dict[int, str] = {
    400: "The request cannot be served as asked (type `export`: nothing to export, no "
    "passphrase for a private key...).",
    401: "No valid credentials (type `unauthenticated`): send `Authorization: Bearer <token>` "
    "or the `__Host-certgate_session` cookie; a revoked token is refused.",
    403: "Not allowed (type `forbidden`): an auditor changes nothing and exports no private "
    "key; a session-authenticated change needs its `X-CSRF-Token` header.",
    404: "Not found (type `not-found`).",
    409: "Conflicts with the store (types `conflict`, `in-use`: the certificate secures "
    "addresses or is part of a manual chain, `protected`: the factory certificate), or an "
    "ACME order cannot be placed yet (type `acme-not-ready`: no account, or no `certgate "
    "serve` to answer the challenge: a plain HTTP listener for http-01, an HTTPS one for "
    "tls-alpn-01), or an ACME order's certificate was issued and imported but kept off its "
    "addresses (type `certificate-unassigned`: `certificate_id`, `concerns`).",
    413: "The request body is too large (type `payload-too-large`).",
    415: "The body is not JSON (type `unsupported-media-type`): send `Content-Type: "
    "application/json` (the imports take `multipart/form-data`).",
    422: "Invalid input. Type `validation` names the field at fault in `field` (and, for "
    "malformed requests, every field in `errors`); reading files gives `wrong-password`, "
    "`password-required`, `not-a-certificate`, `corrupt-data`, `file-too-large`, "
    "`unsupported-key`, `excessive-work` (a key derivation asking absurd work) or "
    "`import-format`; assigning or exporting a key the store does not hold gives "
    "`key-missing`.",
    431: "The request line and header fields exceed 16 KiB (type `header-too-large`); "
    "the connection is closed.",
    429: "Too many wrong passwords from the caller's network (type `throttled`): the current "
    "password is guessed no faster than at the login page; `Retry-After` says in how many "
    "seconds to try again.",
    502: "The mail relay could not be reached or refused the mail (type `mail`): the "
    "detail quotes its answer (refused connection, TLS failure, wrong username or password, "
    "refused recipient, timeout). Or the ACME CA could not be reached or refused the account "
    "or order (type `acme`): `ca_document` holds the CA's own problem document.",
    500: "A fault of the appliance, not of the request (type `sealing`: the master key does "
    "not open a stored private key).",
}


#: The settings of an operation that answers 204 with no body (its function returns None).
NO_CONTENT: dict[str, Any] = {"status_code": 204, "response_class": Response}
#: The settings of an operation that makes an item: 201 (the item's place: ``paths.locate``).
CREATED: dict[str, Any] = {"status_code": 201}


OVERVIEW = (
    "Every operation of the /appliance pages, for scripts. Authenticate with an API token "
    "(`Authorization: Bearer cgt_...`, made by `certgate token create` or POST /api/v1/tokens) "
    "or the pages' session cookie plus the `X-CSRF-Token` header for changes. Tokens and users "
    "are administrators or auditors; auditors see everything, change nothing and export no "
    "private key. Every failure is an RFC 9457 problem (`application/problem+json`) whose "
    "`type` is stable: https://certgate.invalid/problems/ followed by `validation` (with the "
    "field at fault in `field`), `not-found`, `conflict`, `in-use`, `protected`, "
    "`key-missing`, `wrong-password`, `password-required`, `not-a-certificate`, "
    "`corrupt-data`, `file-too-large`, `unsupported-key`, `excessive-work`, `import-format`, "
    "`export`, `mail`, `unauthenticated`, `forbidden`, `throttled`, `method-not-allowed`, "
    "`payload-too-large` or `header-too-large`."
)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with the Problem schema."""
    return {
        status: {
            "description": PROBLEM_STATUSES[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in sorted(set(statuses))
    }


def document_problems(app: FastAPI) -> None:
    """Put the Problem schema (and what it refers to) into the OpenAPI components, the 431 of
    the header size limit on every operation, the 413 of the body size limit on every
    operation with a body, and an overview into ``info``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        for name, definition in problem_schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["Problem"] = problem_schema
        for path, item in document.get("paths", {}).items():
            for operation in item.values() if path.startswith(API_PREFIX) else ():
                _add_implied_problems(operation)
                # Any request can carry a header too large to read (a long query string).
                for status, response in problem_responses(431).items():
                    operation["responses"].setdefault(str(status), response)
                if "requestBody" in operation:  # every body has a size limit, JSON its type
                    json_body = "application/json" in operation["requestBody"]["content"]
                    for status, response in problem_responses(413, *[415] * json_body).items():
                        operation["responses"].setdefault(str(status), response)
        document["info"].setdefault("description", OVERVIEW)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_implied_problems(operation: dict[str, Any]) -> None:
    """The problems who may call an operation implies, so that no route lists them: 401
    where it needs credentials, 403 where it changes something (it takes the
    ``X-CSRF-Token`` header: an auditor, or a session without the token, is refused).
    Problems stay in status order, after the answers."""
    changes = any(
        parameter["name"].lower() == CSRF_HEADER for parameter in operation.get("parameters", [])
    )
    implied = [*[401] * ("security" in operation), *[403] * changes]
    responses = operation["responses"]
    problems = {
        int(status): responses.pop(status)
        for status in list(responses)
        if status.isdigit() and int(status) >= 400
    }
    for status, response in problem_responses(*implied).items():
        problems.setdefault(int(status), response)
    responses.update((str(status), problems[status]) for status in sorted(problems))
