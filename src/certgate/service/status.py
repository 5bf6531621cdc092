"""The guide's Status > Basics: Appliance Statistics, plus what each listener serves.

The guide's fields belong to a hardware appliance; each shows the nearest true value here:
the operating system for the firmware, the Python and OpenSSL builds for the service pack.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as cryptography_backend

from certgate import __version__
from certgate.service.appliance import GUID_SETTING, SERIAL_SETTING, Appliance
from certgate.service.health import Finding, diagnose
from certgate.service.networking import list_addresses
from certgate.service.serving import read_status
from certgate.tls.native import front_openssl_version


@dataclass(frozen=True)
class ApplianceStatus:
    appliance_version: str
    serial_number: str
    guid: str
    software_version: str
    service_pack: str
    firmware_version: str
    firmware_build_date: str
    uptime: str
    load: str
    running_processes: int | None  # running now (the guide's "(0)" after the load)
    diagnostic_status: str
    diagnostics: list[Finding]
    system_time: str
    time_zone: str
    listeners: list[dict[str, Any]] | None  # None: no 'certgate serve' runs on this data dir
    serve_workers: int | None  # the worker processes of that 'certgate serve'


def appliance_status(app: Appliance) -> ApplianceStatus:
    with app.store.reading() as repository:
        serial = repository.setting(SERIAL_SETTING, "")
        guid = repository.setting(GUID_SETTING, "")
    now = dt.datetime.now().astimezone()
    serving = read_status(app)
    diagnosis = diagnose(app, list_addresses(app), serving)
    return ApplianceStatus(
        appliance_version=f"certgate {__version__}",
        serial_number=serial,
        guid=guid,
        software_version=__version__,
        service_pack=_service_pack(),
        firmware_version=_firmware_version(),
        firmware_build_date=platform.version(),
        uptime=_uptime(),
        load=", ".join(f"{value:.2f}" for value in os.getloadavg()),
        running_processes=_running_processes(),
        diagnostic_status=diagnosis.summary,
        diagnostics=diagnosis.findings,
        system_time=now.strftime("%a %b %d, %Y %H:%M:%S %Z"),
        time_zone=time.tzname[0] if not time.daylight else "/".join(time.tzname),
        listeners=serving.listeners if serving else None,
        serve_workers=serving.workers if serving else None,
    )


def _uptime() -> str:
    """System up-time as the guide shows it (days, hours:minutes)."""
    try:
        seconds = int(float(Path("/proc/uptime").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return "unknown"
    days, rest = divmod(seconds, 86400)
    hours, minutes = divmod(rest // 60, 60)
    return (f"{days} day(s), " if days else "") + f"{hours}:{minutes:02d}"


def _service_pack() -> str:
    """What certgate runs on: Python, the TLS front end's OpenSSL and pyca/cryptography's."""
    return (
        f"Python {platform.python_version()}; TLS front end {front_openssl_version()}; "
        f"cryptography {cryptography.__version__} ({cryptography_backend.openssl_version_text()})"
    )


def _firmware_version() -> str:
    """The operating system release and its kernel."""
    try:
        release = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:  # no /etc/os-release
        release = ""
    kernel = f"{platform.system()} {platform.release()}"
    return f"{release}, {kernel}" if release else kernel


def _running_processes() -> int | None:
    """Processes running now: the fourth field of /proc/loadavg is ``running/total``."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def statistics(status: ApplianceStatus) -> list[tuple[str, str]]:
    """The guide's Appliance Statistics rows, in its order, as every face shows them."""
    running = "" if status.running_processes is None else f" ({status.running_processes})"
    return [
        ("Appliance Version", status.appliance_version),
        ("Appliance Serial Number", status.serial_number),
        ("Appliance GUID", status.guid),
        ("Base Software Version", status.software_version),
        ("Service Pack", status.service_pack),
        ("Firmware Version", status.firmware_version),
        ("Firmware Build Date", status.firmware_build_date),
        ("System Up-Time", status.uptime),
        ("Processes", status.load + running),
        ("Diagnostic Status", status.diagnostic_status),
        ("System Time", status.system_time),
        ("Time Zone", status.time_zone),
    ]
