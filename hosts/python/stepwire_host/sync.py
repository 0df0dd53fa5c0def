"""`Client`: the blocking face of `AsyncClient`, for hosts without an event loop.

One background thread runs an event loop and the `AsyncClient`; each call blocks until its
answer. A call that times out, or is interrupted (Ctrl-C), is cancelled on the server
(`$/cancelRequest`). `submit` returns a `concurrent.futures.Future` whose `cancel()` does the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Optional, TypeVar

from .client import AsyncClient
from .protocol import (
    ActParams,
    ActResult,
    AgentStepParams,
    AgentStepResult,
    InitializeResult,
    PlanParams,
    PlanResult,
    ProgressUpdateParams,
    ProgressUpdateResult,
)

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stepwire-host", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Awaitable[T]) -> "concurrent.futures.Future[T]":
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]

    def run(self, coroutine: Awaitable[T]) -> T:
        future = self.submit(coroutine)
        try:
            return future.result()
        except BaseException:  # KeyboardInterrupt included: stop the work before going on
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class Client:
    """A blocking stepwire client: `Client.spawn(policy)` or `Client.connect(url)`; use as a
    context manager or call `close()`. Same methods as `AsyncClient`, without `await`."""

    def __init__(self, loop: _LoopThread, inner: AsyncClient) -> None:
        self._loop = loop
        self._inner = inner

    @classmethod
    def _make(cls, factory: Callable[[], Awaitable[AsyncClient]]) -> "Client":
        loop = _LoopThread()
        try:
            inner = loop.run(factory())
        except BaseException:
            loop.stop()
            raise
        return cls(loop, inner)

    @classmethod
    def spawn(cls, policy: str, **options: Any) -> "Client":
        """Start `stepwire serve --stdio`; options as `AsyncClient.spawn`."""
        return cls._make(lambda: AsyncClient.spawn(policy, **options))

    @classmethod
    def connect(cls, url: str, **options: Any) -> "Client":
        """Connect to `ws://` or `http://`; options as `AsyncClient.connect`."""
        return cls._make(lambda: AsyncClient.connect(url, **options))

    @property
    def info(self) -> Optional[InitializeResult]:
        return self._inner.info

    @property
    def pid(self) -> Optional[int]:
        return self._inner.pid

    def request(self, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        return self._loop.run(self._inner.request(method, params, timeout))

    def submit(self, method: str, params: Any = None, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """Start a request without waiting; `future.cancel()` cancels it on the server too."""
        return self._loop.submit(self._inner.request(method, params, timeout))

    def plan(self, params: PlanParams, timeout: Optional[float] = None) -> PlanResult:
        return self.request("agent/plan", params, timeout)

    def act(self, params: ActParams, timeout: Optional[float] = None) -> ActResult:
        return self.request("agent/act", params, timeout)

    def progress(self, params: ProgressUpdateParams, timeout: Optional[float] = None) -> ProgressUpdateResult:
        return self.request("agent/progress", params, timeout)

    def step(self, params: AgentStepParams, timeout: Optional[float] = None) -> AgentStepResult:
        return self.request("agent/step", params, timeout)

    def close(self, grace: float = 5.0) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._inner.close(grace))
        finally:
            self._loop.stop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped without close(): end the connection (the child goes at its stdin's EOF, else
        # is killed) on the loop thread, then stop that thread; never block the collector.
        try:
            loop = self._loop.loop
            if not loop.is_closed() and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._inner._abort(), loop)
                future.add_done_callback(lambda _: loop.call_soon_threadsafe(loop.stop))
        except Exception:
            pass
