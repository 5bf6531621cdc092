"""Property-based tests over every page form: whatever a browser (or anything else) posts,
the pages answer with a page, a redirect or a download, never a 500, and the server logs no
traceback (the ``serve`` fixture checks its log when it stops).

hypothesis draws, for each form, any subset of every field name the pages use, each with any
Unicode text (controls, digits of other scripts, 20-digit numbers, long text), path
parameters alike, and random bytes as uploaded files. Left out: Log out (it would end the
fuzzer's session) and SSL Configuration (a valid random port or TLS version would cut the
fuzzer off its listener; tests/api/test_settings.py covers that page's refusals) and Send Test
Email (it would dial whatever relay the fuzzer saved; tests/browser/test_email.py covers
it). Bounded: ``EXAMPLES`` per form, derandomized, so the suite is a stable gate
(``CERTGATE_FUZZ_RANDOM=1`` explores).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certgate.service import users
from tests.api.client import Server
from tests.api.conftest import serve

ADDRESS = "127.0.0.86"
EXAMPLES = int(os.environ.get("CERTGATE_PAGE_FUZZ_EXAMPLES", "15"))

#: Every name of every input of the pages' forms.
FIELDS = (
    "action", "address", "addresses", "back", "button", "chain_mode", "city", "common_name",
    "country", "current_password", "friendly_name", "hostnames", "id", "include_certificate",
    "include_chain", "include_private_key", "key", "name", "next", "organization",
    "organizational_unit", "passphrase", "password", "pem", "reassign_to_factory", "role",
    "sans", "state", "unencrypted_private_key", "username", "days", "with", "host", "port",
    "security", "verify_certificate", "ca_bundle", "from_address", "to_addresses",
    "remove_password", "notice_days",
)  # fmt: skip
#: Each form (after /appliance), path parameters in braces.
FORMS = (
    "/security/certificates/action",
    "/security/certificates/delete",
    "/security/certificates/create",
    "/security/certificates/import",
    "/security/certificates/{certificate_id}",
    "/security/certificates/{certificate_id}/export",
    "/security/certificates/{certificate_id}/export/format",
    "/security/certificates/{certificate_id}/renewal-request",
    "/security/certificates/{certificate_id}/replace",
    "/security/requests/action",
    "/security/requests/delete",
    "/security/tokens",
    "/security/tokens/{token_id}/revoke",
    "/security/email",
    "/users",
    "/users/password",
    "/users/{username}/password",
    "/users/{username}/delete",
    "/networking",
    "/networking/remove",
    "/networking/hostnames",
    "/login",
)
TRICKY = ("²", "٣", "99999999999999999999", "-1", "0", "1", "2", "", " ", "x" * 3000, "../..")
values = st.one_of(st.sampled_from(TRICKY), st.text(max_size=40)).filter(
    lambda value: value.strip() != ADDRESS and value != "fuzzer"
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("page-fuzz") / "data", ADDRESS) as server:
        yield server


@pytest.fixture(scope="module")
def browser(fuzzed: Server) -> Iterator[tuple[httpx.Client, str]]:
    """A logged-in administrator of its own (the fuzzer may change admin's password)."""
    app = fuzzed.service()
    try:
        users.create_user(app, "fuzzer", "fuzzer password 1234", "admin")
    finally:
        app.close()
    session = fuzzed.login("fuzzer", "fuzzer password 1234")
    with fuzzed.pages(session) as pages:
        yield pages, str(session.principal.csrf_token)


@pytest.mark.parametrize("form", FORMS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("CERTGATE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    fields=st.dictionaries(st.sampled_from(FIELDS), st.lists(values, max_size=3), max_size=8),
    parameter=values,
    upload=st.one_of(st.none(), st.binary(max_size=2000)),
)
def test_no_page_form_answers_with_a_server_error(
    browser: tuple[httpx.Client, str],
    form: str,
    fields: dict[str, list[str]],
    parameter: str,
    upload: bytes | None,
) -> None:
    pages, csrf = browser
    path = form
    for name in ("{certificate_id}", "{token_id}", "{username}"):
        path = path.replace(name, quote(parameter, safe="") or "1")
    data = {**fields, "csrf_token": [csrf]}
    files = None
    if upload is not None:
        name = "files" if form.endswith("/import") else "chain_file"
        files = [(name, ("fuzz.bin", upload, "application/octet-stream"))]
    answer = pages.post(path, data=data, files=files)
    assert answer.status_code < 500, (path, fields, answer.text[-2000:])
    if answer.status_code in (301, 302, 303, 307):
        assert answer.headers["location"]
    elif answer.status_code != 200 or "attachment" not in answer.headers.get(
        "content-disposition", ""
    ):
        assert answer.headers["content-type"].startswith("text/html"), answer.headers
