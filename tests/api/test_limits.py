"""Request size limits: a body over its limit is refused with 413 while it arrives, by the
API (problem+json) and by the pages (an error page), and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from certgate.pki.loader import MAX_FILE_SIZE
from certgate.web.limits import MAX_FORM_BODY, MAX_IMPORT_BODY, MAX_IMPORT_FILES
from certgate.web.security import SESSION_COOKIE
from tests.api.client import Server, ok, problem

CHUNK = b"A" * (1024 * 1024)
BOUNDARY = "certgate-test-boundary"


def multipart_file(size: int, *fields: tuple[str, str]) -> Iterator[bytes]:
    """A multipart/form-data body with ``fields`` and one file part of ``size`` bytes,
    produced as it is sent (never held in memory)."""
    for name, value in fields:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="huge.pem"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    for _ in range(size // len(CHUNK)):
        yield CHUNK
    yield CHUNK[: size % len(CHUNK)]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def certificate_count(api: httpx.Client) -> int:
    return len(ok(api.get("/certificates")))


def test_the_api_refuses_an_import_over_the_limit_and_stores_nothing(primary: Server) -> None:
    with primary.client() as api:
        before = certificate_count(api)
        refused = problem(
            api.post("/imports", content=multipart_file(MAX_IMPORT_BODY + 1), headers=MULTIPART),
            413,
            "payload-too-large",
        )
        assert refused["detail"] == "the request is larger than 128 MiB, its limit"
        problem(
            api.post("/addresses", json={"address": "x" * MAX_FORM_BODY}), 413, "payload-too-large"
        )
        assert certificate_count(api) == before


def test_an_import_of_too_many_files_says_so(primary: Server) -> None:
    """More files than an import takes: the form parser's reason, not "cannot be read as
    JSON" (the body is a multipart form, as the operation asks)."""
    files = [("files", (f"leaf-{number}.pem", b"x")) for number in range(MAX_IMPORT_FILES + 1)]
    with primary.client() as api:
        refused = problem(api.post("/imports", files=files), 422, "validation")
    assert refused["field"] == "body", refused
    assert "JSON" not in refused["detail"] and str(MAX_IMPORT_FILES) in refused["detail"], refused


def test_the_pages_refuse_bodies_over_their_limits(primary: Server) -> None:
    session = primary.login()
    token = str(session.principal.csrf_token)
    with httpx.Client(
        base_url=primary.base_url,
        verify=False,
        cookies={SESSION_COOKIE: session.cookie_value},
        timeout=60,
    ) as browser:
        page = "/appliance/security/certificates/import"
        too_big = browser.post(
            page,
            content=multipart_file(MAX_IMPORT_BODY + 1, ("csrf_token", token)),
            headers=MULTIPART,
        )
        assert too_big.status_code == 413
        assert "text/html" in too_big.headers["content-type"]
        assert "The request is larger than 128 MiB, its limit." in too_big.text
        # Under the body limit but over the loader's per-file limit: that file's error.
        one_file = browser.post(
            page,
            content=multipart_file(MAX_FILE_SIZE + 1, ("csrf_token", token)),
            headers=MULTIPART,
        )
        assert one_file.status_code == 422
        assert "certgate accepts up to 32 MiB" in one_file.text
        form = browser.post(
            "/appliance/security/ssl",
            data={"csrf_token": token, "tls12_ciphers": "x" * MAX_FORM_BODY},
        )
        assert form.status_code == 413
        assert "The request is larger than 4 MiB, its limit." in form.text
