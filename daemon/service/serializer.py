"""Level-triggered, serialized reconcile passes.

Any number of triggers (start, rule change, timer, order event, reconnect, cron) may ask for a
pass at any moment. Passes never overlap: triggers that arrive while a pass runs coalesce into
exactly one more pass, which sees every reason that asked for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("tradectl.daemon")

PassRunner = Callable[[frozenset[str]], Awaitable[None]]


class PassSerializer:
    def __init__(self, run_pass: PassRunner) -> None:
        self._run_pass = run_pass
        self._reasons: set[str] = set()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._in_pass = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._pass_started_at: float | None = None
        self.passes_started = 0

    @property
    def closed(self) -> bool:
        """True once shutdown began: a pass in flight should stop sending at its next check."""
        return self._closed

    @property
    def in_pass(self) -> bool:
        return self._in_pass

    def pass_running_for(self) -> float:
        """Seconds the pass in flight has been running (0 when none runs)."""
        if self._pass_started_at is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._pass_started_at

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="pass-worker")

    def request(self, reason: str) -> None:
        if self._closed:
            return
        self._reasons.add(reason)
        self._idle.clear()
        self._wakeup.set()

    async def wait_idle(self) -> None:
        """Until no pass runs and none is pending."""
        await self._idle.wait()

    async def close(self, grace: float) -> bool:
        """Accept no more triggers; let the pass in flight finish within ``grace`` seconds, then
        cancel it. True when it finished on its own (or none was running)."""
        self._closed = True
        self._wakeup.set()
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if done:
            return True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return False

    async def _worker(self) -> None:
        while True:
            await self._wakeup.wait()
            if self._closed:
                self._idle.set()
                return
            self._wakeup.clear()
            reasons = frozenset(self._reasons)
            self._reasons.clear()
            self._in_pass = True
            self._pass_started_at = asyncio.get_running_loop().time()
            self.passes_started += 1
            try:
                await self._run_pass(reasons)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failing pass must not stop the daemon: the next trigger retries from a fresh
                # observation, which is what level-triggered reconciliation is for.
                log.exception("reconcile pass failed", extra={"reasons": sorted(reasons)})
            finally:
                self._in_pass = False
                self._pass_started_at = None
            if not self._wakeup.is_set():
                self._idle.set()
