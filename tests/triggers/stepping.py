"""Drive a trigger's run() one poll at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook

STEP_TIMEOUT_S = 30


class Stepper:
    """Takes the place of a trigger's pause: the test sees each wait and says when it ends.

    The trigger's hook is replaced too, by one that does not wait between its own retries.

    :param trigger: the trigger to drive
    """

    def __init__(self, trigger: Any) -> None:
        self.waits: list[float] = []
        self._paused: asyncio.Queue[float] = asyncio.Queue()
        self._resume: asyncio.Queue[None] = asyncio.Queue()
        self._run: AsyncIterator[Any] = trigger.run()
        self._event: asyncio.Future[Any] | None = None
        trigger._pause = self._pause
        trigger._new_hook = lambda: CentralMonitoringAsyncHook(
            trigger.centralmon_conn_id, sleep=_no_wait
        )

    async def _pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self._paused.put(seconds)
        await self._resume.get()

    def start(self) -> None:
        """Start the run; it goes on until its first pause or its event."""
        self._event = asyncio.ensure_future(anext(self._run))

    async def pause(self) -> float:
        """Wait until the trigger pauses; return how long it asked to wait."""
        assert self._event is not None, "start() first"
        paused = asyncio.ensure_future(self._paused.get())
        done, _ = await asyncio.wait(
            {paused, self._event}, timeout=STEP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if paused not in done:
            paused.cancel()
            raise AssertionError(f"the trigger did not pause; it sent {self._event.result()}")
        return paused.result()

    def resume(self) -> None:
        """End the current pause."""
        self._resume.put_nowait(None)

    async def event(self) -> dict[str, Any]:
        """Wait for the trigger's event and return its payload; the run must then end."""
        assert self._event is not None, "start() first"
        event = await asyncio.wait_for(self._event, STEP_TIMEOUT_S)
        payload: dict[str, Any] = event.payload
        try:
            await anext(self._run)
        except StopAsyncIteration:
            return payload
        raise AssertionError("the trigger went on after its event")

    async def close(self) -> None:
        """Stop the run wherever it is."""
        if self._event is not None and not self._event.done():
            self._event.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._event
        aclose = getattr(self._run, "aclose", None)
        if aclose is not None:
            await aclose()

    async def run_to_event(self) -> dict[str, Any]:
        """Start, end every pause at once, and return the event."""
        self.start()
        while True:
            assert self._event is not None
            paused = asyncio.ensure_future(self._paused.get())
            done, _ = await asyncio.wait(
                {paused, self._event}, timeout=STEP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if self._event in done:
                paused.cancel()
                return await self.event()
            assert done, "the trigger neither paused nor sent an event"
            self.resume()


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)
