"""What the administrator guide shows, word for word, for tests to hold each face to."""

from __future__ import annotations

#: Status > Basics, "Appliance Statistics": every row, in the guide's order.
APPLIANCE_STATISTICS = [
    "Appliance Version",
    "Appliance Serial Number",
    "Appliance GUID",
    "Base Software Version",
    "Service Pack",
    "Firmware Version",
    "Firmware Build Date",
    "System Up-Time",
    "Processes",
    "Diagnostic Status",
    "System Time",
    "Time Zone",
]
