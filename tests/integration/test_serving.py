"""``ApplianceServer`` in this process: a failure while building the first plan comes out as
itself (not as a failure to stop the revision watch that never started)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

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

    # On a thread of its own: the browser tests may leave an event loop running on this one.
    with (
        ThreadPoolExecutor(1) as pool,
        pytest.raises(ValueError, match="the plan cannot be read"),
    ):
        pool.submit(asyncio.run, run()).result(timeout=60)
