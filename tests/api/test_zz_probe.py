from __future__ import annotations

from tests.api.client import Server


def test_probe(primary: Server) -> None:
    session = primary.login()
    csrf = str(session.principal.csrf_token)
    big = "99999999999999999999"
    with primary.pages(session) as pages:
        for path in [
            f"/security/certificates/{big}",
            f"/security/certificates/{big}/export",
            f"/security/certificates/{big}/renewal-request",
            f"/security/requests/{big}",
            f"/security/requests/{big}/csr",
            "/security/certificates/-1",
            "/security/requests/0/csr",
            "/audit?since=99999-01-01",
            "/audit?page=99999999999999999999",
            "/audit?limit=-5",
            "/security/certificates?page=99999999999999999999&per=7",
            "/security/certificates?sort=%00",
            "/security/certificates?q=%00",
            "/security/certificates?warning=x",
            "/users/%00/password",
            "/login?next=%00",
            "/security/acme?order=" + big,
        ]:
            r = pages.get(path)
            print("GET", path, r.status_code)
        for path, data in [
            (f"/security/certificates/{big}", {"friendly_name": "x"}),
            (f"/security/certificates/{big}/export", {"include_certificate": "1"}),
            (f"/security/certificates/{big}/delete", {}),
            (f"/security/requests/{big}/delete", {}),
            ("/security/certificates/action", {"action": "delete", "id": big}),
            ("/security/certificates/action", {"action": "export", "id": "1"}),
            ("/networking", {"address": "\x00"}),
            ("/users/%00/delete", {}),
            ("/users/" + "a" * 100 + "/password", {"password": "x" * 12}),
            ("/security/ssl", {"min_version": "\x00"}),
            ("/security/email", {"port": big}),
            ("/security/acme", {"directory": "\x00"}),
            ("/security/tokens/0/revoke", {}),
            ("/status/support-package", {}),
            ("/users/password", {"current_password": "\xff", "password": "y" * 12}),
        ]:
            r = pages.post(path, data={"csrf_token": csrf, **data})
            print("POST", path, r.status_code, r.headers.get("location", ""))
    log = primary.log_text()
    print("TRACEBACK" if "Traceback" in log else "no traceback")
    if "Traceback" in log:
        print(log[log.index("Traceback") - 500 : log.index("Traceback") + 3000])
