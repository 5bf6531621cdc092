"""The guide's Status > Basics: Appliance Statistics, plus what each listener serves."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certgate import __version__
from certgate.service.appliance import Appliance
from certgate.service.serving import read_status


@dataclass(frozen=True)
class ApplianceStatus:
    appliance_version: str
    serial_number: str
    guid: str
    software_version: str
    uptime: str
    load: str
    system_time: str
    time_zone: str
    listeners: list[dict[str, Any]] | None  # None: no 'certgate serve' runs on this data dir
    serve_workers: int | None  # the worker processes of that 'certgate serve'


def appliance_status(app: Appliance) -> ApplianceStatus:
    with app.store.reading() as repository:
        serial = repository.setting("appliance.serial", "")
        guid = repository.setting("appliance.guid", "")
    now = dt.datetime.now().astimezone()
    serving = read_status(app)
    return ApplianceStatus(
        appliance_version=f"certgate {__version__}",
        serial_number=serial,
        guid=guid,
        software_version=__version__,
        uptime=_uptime(),
        load=", ".join(f"{value:.2f}" for value in os.getloadavg()),
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
