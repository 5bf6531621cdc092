"""Status > Basics, every field of the guide, and a Diagnostic Status that tells the truth:
addresses nobody serves, listeners that failed, another certificate served than assigned, and
assigned certificates (or their chain) expired or expiring (issue 15, point 7)."""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from certgate.service import certificates, imports, networking
from certgate.service.appliance import STATUS_FILE, Appliance
from certgate.service.health import FindingCode, Severity, diagnose
from certgate.service.serving import ServeReport
from tests.support.guide import APPLIANCE_STATISTICS
from tests.support.net import free_port
from tests.support.pki import TestCA, fingerprint, issue, make_chain, pem
from tests.support.polling import eventually
from tests.support.server import RunningAppliance, import_with_key, run_cli, running_appliance

ADDRESS = "127.0.0.2"
TAKEN = "127.0.0.3"  # bound by the test before certgate serve may listen there
HTTP_TAKEN = "127.0.0.66"  # its HTTP port bound by the test before certgate serve starts


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAppliance]:
    with running_appliance(tmp_path_factory.mktemp("diagnostics") / "data", ADDRESS) as app:
        yield app


def status(app: RunningAppliance) -> dict[str, object]:
    document: dict[str, object] = json.loads(run_cli(app.data_dir, "status", "--json").stdout)
    return document


def codes(document: dict[str, object]) -> list[str]:
    findings = document["diagnostics"]
    assert isinstance(findings, list)
    return [finding["code"] for finding in findings]


def test_every_field_of_the_guide_with_its_nearest_true_value(serving: RunningAppliance) -> None:
    shown = run_cli(serving.data_dir, "status").stdout
    labels = [re.split(r"\s{2,}", line)[0] for line in shown.splitlines()]
    assert [
        label for label in labels if label in APPLIANCE_STATISTICS
    ] == APPLIANCE_STATISTICS  # guide's order
    document = status(serving)
    assert platform.release() in str(document["firmware_version"])
    assert platform.version() == document["firmware_build_date"]
    assert f"Python {platform.python_version()}" in str(document["service_pack"])
    assert "OpenSSL" in str(document["service_pack"])
    assert isinstance(document["running_processes"], int) and document["running_processes"] >= 1
    # The guide's "0.06, 0.11, 0.12 (0)": the load, then the processes running now.
    assert re.search(r"^Processes\s+\d+\.\d\d, \d+\.\d\d, \d+\.\d\d \(\d+\)$", shown, re.M)


def test_a_healthy_appliance_says_so(serving: RunningAppliance) -> None:
    document = status(serving)
    assert document["diagnostic_status"] == "Healthy", document["diagnostics"]
    assert document["diagnostics"] == []


def test_an_assigned_certificate_expiring_in_five_days_needs_attention(
    serving: RunningAppliance, tmp_path: Path
) -> None:
    site = import_with_key(serving, tmp_path, make_chain("soon.example.test", days=6))
    run_cli(serving.data_dir, "ip", "assign", ADDRESS, "--cert", str(site), "--confirm")
    try:
        document = status(serving)
        assert document["diagnostic_status"] == "Needs attention: 1 warning(s)"
        [finding] = document["diagnostics"]  # type: ignore[misc]
        assert finding["code"] == FindingCode.CERTIFICATE_EXPIRING
        assert finding["severity"] == "warning"
        assert "soon.example.test" in finding["message"] and ADDRESS in finding["message"]
        assert "expires in 4 day(s)" in finding["message"]  # made a day ago, for six days
    finally:
        factory = next(
            c
            for c in json.loads(run_cli(serving.data_dir, "cert", "list", "--json").stdout)
            if c["is_factory"]
        )
        run_cli(
            serving.data_dir, "ip", "assign", ADDRESS, "--cert", str(factory["id"]), "--confirm"
        )


def test_a_listener_that_cannot_bind_is_an_error(serving: RunningAppliance) -> None:
    with socket.socket() as squatter:
        squatter.bind((TAKEN, serving.port))
        squatter.listen()
        run_cli(serving.data_dir, "ip", "add", TAKEN)
        try:
            eventually(
                lambda: FindingCode.LISTENER_FAILED in codes(status(serving)),
                what="the failed listener in Diagnostic Status",
            )
            document = status(serving)
            assert str(document["diagnostic_status"]).startswith("Needs attention: 1 error(s)")
            failed = next(
                finding
                for finding in document["diagnostics"]  # type: ignore[attr-defined]
                if finding["code"] == FindingCode.LISTENER_FAILED
            )
            assert TAKEN in failed["message"] and str(serving.port) in failed["message"]
            shown = run_cli(serving.data_dir, "status").stdout
            assert f"error: {TAKEN} port {serving.port} is not listening" in shown
        finally:
            run_cli(serving.data_dir, "ip", "remove", TAKEN)


def test_addresses_with_no_serve_running_are_an_error(
    new_appliance: Callable[[], Appliance],
) -> None:
    app = new_appliance()
    networking.add_address(app, "127.0.0.9")
    diagnosis = diagnose(app, networking.list_addresses(app), None)
    [finding] = diagnosis.findings
    assert finding.code is FindingCode.NOT_SERVED and finding.severity is Severity.ERROR
    assert "none of the 1 address(es) is served" in finding.message
    assert diagnosis.summary == "Needs attention: 1 error(s)"


def test_a_serve_killed_is_not_taken_for_the_process_that_got_its_pid(tmp_path: Path) -> None:
    """A power cut kills ``certgate serve``; its status file stays in the data directory, and
    after the reboot its process id belongs to another program. Status must say that no
    serve runs, not show the listeners of the dead one as healthy."""
    with running_appliance(tmp_path / "data", "127.0.0.12") as app:
        assert eventually(lambda: status(app)["listeners"])
        app.process.kill()
        app.process.wait()
        with subprocess.Popen(["sleep", "60"]) as other:  # the program the pid went to
            try:
                path = app.data_dir / STATUS_FILE
                left = json.loads(path.read_text())
                path.write_text(json.dumps({**left, "pid": other.pid}))
                document = status(app)
            finally:
                other.kill()
    assert document["listeners"] is None
    assert FindingCode.NOT_SERVED in codes(document)
    assert str(document["diagnostic_status"]).startswith("Needs attention")


def test_what_is_served_is_compared_with_what_is_assigned(
    new_appliance: Callable[[], Appliance],
) -> None:
    """The report a running serve publishes, against the assignments in the store."""
    app = new_appliance()
    for address in ("127.0.0.9", "127.0.0.10", "127.0.0.11"):
        networking.add_address(app, address)
    [nine, ten, _] = networking.list_addresses(app)
    report = ServeReport(
        workers=1,
        listeners=[
            # presenting what is assigned: nothing to say
            {"address": nine.address, "port": 443, "state": "listening",
             "fingerprint": nine.certificate_fingerprint, "error": None},
            # presenting something else: drift
            {"address": ten.address, "port": 443, "state": "listening",
             "fingerprint": "00" * 32, "error": None},
            # 127.0.0.11: no listener at all
        ],
    )  # fmt: skip
    findings = diagnose(app, networking.list_addresses(app), report).findings
    assert [(f.severity, f.code) for f in findings] == [
        (Severity.ERROR, FindingCode.NOT_SERVED),  # errors first
        (Severity.WARNING, FindingCode.SERVING_OTHER_CERTIFICATE),
    ]
    assert "127.0.0.11" in findings[0].message and "127.0.0.10" in findings[1].message


def test_an_expired_certificate_and_an_expired_chain_certificate_are_errors(
    new_appliance: Callable[[], Appliance],
) -> None:
    app = new_appliance()
    ca = TestCA.make()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    key, leaf = ca.leaf("gone.example.test", not_before=long_ago, days=30)
    imports.import_files(
        app,
        [
            ("root.pem", pem(ca.root)),
            ("intermediate.pem", pem(ca.intermediate)),
            ("leaf.pem", pem(leaf, key)),
        ],
    )
    site = certificates.show_certificate(app, fingerprint(leaf))
    networking.add_address(app, "127.0.0.9")
    networking.assign(app, ["127.0.0.9"], site.id, confirm=True)
    [finding] = diagnose(app, networking.list_addresses(app), _serving_all(app)).findings
    assert finding.code is FindingCode.CERTIFICATE_EXPIRED and finding.severity is Severity.ERROR
    assert "'gone.example.test'" in finding.message and "127.0.0.9" in finding.message

    # A chain certificate that expired: what a browser refuses although the leaf is valid.
    old_ca = TestCA.make(root_name="Old Root", intermediate_name="Old Intermediate")
    key, leaf = old_ca.leaf("chained.example.test")
    imports.import_files(app, [("leaf.pem", pem(leaf, key))])
    expired_intermediate = _reissued(old_ca, not_before=long_ago, days=30)
    imports.import_files(app, [("i.pem", pem(expired_intermediate)), ("r.pem", pem(old_ca.root))])
    chained = certificates.show_certificate(app, fingerprint(leaf))
    networking.assign(app, ["127.0.0.9"], chained.id, confirm=True)
    [finding] = diagnose(app, networking.list_addresses(app), _serving_all(app)).findings
    assert finding.code is FindingCode.CERTIFICATE_EXPIRED
    assert "chain certificate" in finding.message and "Old Intermediate" in finding.message


def _serving_all(app: Appliance) -> ServeReport:
    """The report of a serve presenting every assignment (what a healthy one publishes)."""
    return ServeReport(
        workers=1,
        listeners=[
            {"address": a.address, "port": 443, "state": "listening",
             "fingerprint": a.certificate_fingerprint, "error": None}
            for a in networking.list_addresses(app)
        ],
    )  # fmt: skip


def _reissued(ca: TestCA, *, not_before: dt.datetime, days: int) -> x509.Certificate:
    """``ca``'s intermediate again (same name and key), with other validity dates."""
    return issue(
        ca.intermediate.subject,
        ca.intermediate_key.public_key(),
        ca.root.subject,
        ca.root_key,
        ca=True,
        not_before=not_before,
        days=days,
    )


def test_a_hostname_the_certificate_does_not_cover_is_an_error(
    new_appliance: Callable[[], Appliance],
) -> None:
    """A browser connecting by that name refuses the certificate (issue 10, point 5)."""
    app = new_appliance()
    networking.add_address(app, "127.0.0.9", hostnames=["portal.example.test"])
    [finding] = diagnose(app, networking.list_addresses(app), _serving_all(app)).findings
    assert (finding.severity, finding.code) == (Severity.ERROR, FindingCode.HOSTNAME_NOT_COVERED)
    assert finding.message.startswith("127.0.0.9: its certificate 'certgate Appliance'")
    assert "does not cover portal.example.test" in finding.message
    networking.set_hostnames(app, "127.0.0.9", [])
    assert diagnose(app, networking.list_addresses(app), _serving_all(app)).findings == []


def test_a_plain_http_listener_that_cannot_bind_is_a_warning(tmp_path: Path) -> None:
    """The HTTP port (ACME http-01, the redirect to HTTPS) taken on the address by another
    program: HTTPS is served, but the Diagnostic Status says what no longer works."""
    http_port = free_port()
    with socket.socket() as squatter:
        squatter.bind((HTTP_TAKEN, http_port))
        squatter.listen()
        options = ("--http-port", str(http_port))
        with running_appliance(tmp_path / "data", HTTP_TAKEN, serve_options=options) as app:
            document = status(app)
            assert document["diagnostic_status"] == "Needs attention: 1 warning(s)"
            [finding] = document["diagnostics"]  # type: ignore[misc]
            assert finding["code"] == FindingCode.HTTP_LISTENER_FAILED
            assert finding["message"].startswith(
                f"{HTTP_TAKEN} port {http_port} (plain HTTP: ACME http-01 challenges and the "
                "redirect to HTTPS) is not listening: "
            )
            shown = run_cli(app.data_dir, "status").stdout
            assert f"warning: {HTTP_TAKEN} port {http_port} (plain HTTP" in shown
            # The node's heartbeat says so too, for the other nodes of a cluster.
            [node] = json.loads(run_cli(app.data_dir, "node", "list", "--json").stdout)
            [plain] = node["http_listeners"]
            assert (plain["address"], plain["port"], plain["state"]) == (
                HTTP_TAKEN,
                http_port,
                "failed",
            )
            assert [listener["state"] for listener in node["listeners"]] == ["listening"]
            listed = run_cli(app.data_dir, "node", "list").stdout
            assert f"0 ({HTTP_TAKEN} failed)" in listed
