"""``ApplianceServer`` in this process: a failure while building the first plan comes out as
itself (not as a failure to stop the revision watch that never started)."""

from __future__ import annotations

import asyncio

import pytest

from certgate.service import serving
from certgate.service.appliance import Appliance


class _Quiet(asyncio.Protocol):
    pass


def test_a_failing_first_plan_is_reported_as_itself(
    appliance: Appliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise ValueError("the plan cannot be read")

    monkeypatch.setattr(serving, "build_plan", broken)
    server = serving.ApplianceServer(appliance, _Quiet, port_override=1)

    async def run() -> None:
        await server.run(asyncio.Event())

    with pytest.raises(ValueError, match="the plan cannot be read"):
        asyncio.run(run())
