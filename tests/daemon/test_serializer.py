"""Reconcile passes never overlap, and triggers during a pass coalesce into exactly one more."""

from __future__ import annotations

import asyncio

import pytest

from tradectl.service.serializer import PassSerializer


async def _wait_for(condition, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)


def test_triggers_during_a_pass_coalesce_into_one_more_pass() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        seen: list[frozenset[str]] = []
        running = 0
        most_at_once = 0

        async def run_pass(reasons: frozenset[str]) -> None:
            nonlocal running, most_at_once
            running += 1
            most_at_once = max(most_at_once, running)
            seen.append(reasons)
            if len(seen) == 1:
                await release.wait()
            running -= 1

        serializer = PassSerializer(run_pass)
        serializer.start()
        serializer.request("start")
        await _wait_for(lambda: serializer.in_pass)
        for reason in ("rules", "timer", "fill", "rules", "reconnect"):
            serializer.request(reason)
        release.set()
        await asyncio.wait_for(serializer.wait_idle(), 2)
        assert seen == [frozenset({"start"}), frozenset({"rules", "timer", "fill", "reconnect"})]
        assert most_at_once == 1
        assert await serializer.close(grace=1)

    asyncio.run(scenario())


def test_a_failing_pass_does_not_stop_later_passes() -> None:
    async def scenario() -> None:
        calls: list[frozenset[str]] = []

        async def run_pass(reasons: frozenset[str]) -> None:
            calls.append(reasons)
            if len(calls) == 1:
                raise RuntimeError("gateway said no")

        serializer = PassSerializer(run_pass)
        serializer.start()
        serializer.request("start")
        await _wait_for(lambda: len(calls) == 1)
        await asyncio.wait_for(serializer.wait_idle(), 2)
        serializer.request("timer")
        await asyncio.wait_for(serializer.wait_idle(), 2)
        assert calls == [frozenset({"start"}), frozenset({"timer"})]
        await serializer.close(grace=1)

    asyncio.run(scenario())


@pytest.mark.parametrize("finishes", [True, False])
def test_close_lets_the_pass_finish_within_grace_or_abandons_it(finishes: bool) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        cancelled = False

        async def run_pass(reasons: frozenset[str]) -> None:
            nonlocal cancelled
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancelled = True
                raise

        serializer = PassSerializer(run_pass)
        serializer.start()
        serializer.request("start")
        await _wait_for(lambda: serializer.in_pass)
        if finishes:
            asyncio.get_running_loop().call_soon(release.set)
        clean = await serializer.close(grace=0.2)
        assert clean is finishes
        assert cancelled is not finishes
        serializer.request("late")
        assert serializer.closed
        assert serializer.passes_started == 1

    asyncio.run(scenario())


def test_reports_how_long_the_pass_in_flight_runs() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def run_pass(reasons: frozenset[str]) -> None:
            await release.wait()

        serializer = PassSerializer(run_pass)
        assert serializer.pass_running_for() == 0.0
        serializer.start()
        serializer.request("start")
        await _wait_for(lambda: serializer.in_pass)
        assert serializer.pass_running_for() >= 0.0
        release.set()
        await asyncio.wait_for(serializer.wait_idle(), 2)
        assert serializer.pass_running_for() == 0.0
        await serializer.close(grace=1)

    asyncio.run(scenario())
