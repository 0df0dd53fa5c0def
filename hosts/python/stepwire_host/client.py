"""`AsyncClient`: the agent plane of a stepwire server, typed, over stdio, WebSocket or HTTP.

    async with await AsyncClient.spawn("models/scienceworld-step-hrl") as agent:
        result = await agent.step({"state": {"task": "..."}, "observation": {"text": "..."}})

`spawn` starts `stepwire serve --stdio` as a child; `connect` opens `ws://` (a session, like
stdio) or `http://` (one POST per call) to `stepwire serve --listen`. Both run the lifecycle:
`initialize` (version check) and `initialized` first; `close` sends `shutdown` and `exit` where
the transport has a session, and ends the child.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from . import __version__
from .errors import ServerStartError, StepwireError
from .http import HttpChannel
from .peer import NotificationHandler, Peer
from .protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
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
from .transports import ChildProcess, WebSocketStream, serve_command

log = logging.getLogger("stepwire_host")
CHECKOUT = Path(__file__).resolve().parents[3]


def find_binary() -> str:
    """The `stepwire` binary: `$STEPWIRE_BIN`, else `stepwire` on PATH, else the checkout's
    `target/release` or `target/debug` build."""
    explicit = os.environ.get("STEPWIRE_BIN")
    if explicit:
        return explicit
    on_path = shutil.which("stepwire")
    if on_path:
        return on_path
    for profile in ("release", "debug"):
        candidate = CHECKOUT / "target" / profile / "stepwire"
        if candidate.is_file():
            return str(candidate)
    raise ServerStartError("no stepwire binary: set STEPWIRE_BIN, put stepwire on PATH or `cargo build -p stepwire-runtime`")


class AsyncClient:
    """One connection to a stepwire agent server. Use `spawn` or `connect` to make one."""

    def __init__(self, channel: Union[Peer, HttpChannel], child: Optional[ChildProcess] = None,
                 timeout: Optional[float] = None) -> None:
        self._channel = channel
        self._child = child
        self.timeout = timeout
        self.info: Optional[InitializeResult] = None
        self._closed = False

    # -- making one ----------------------------------------------------------------------
    @classmethod
    async def spawn(cls, policy: str, *, binary: Optional[str] = None, args: Sequence[str] = (),
                    env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                    timeout: Optional[float] = None, start_timeout: float = 300.0,
                    on_notification: Optional[NotificationHandler] = None,
                    client_name: str = "stepwire_host") -> "AsyncClient":
        """Start `stepwire serve --stdio --policy POLICY [ARGS]` and initialize it.

        `timeout` is the default per-call limit (None: wait as long as the server works);
        `start_timeout` bounds loading the policy and answering `initialize`."""
        child = await ChildProcess.start(serve_command(binary or find_binary(), policy, args), env=env, cwd=cwd)
        client = cls(Peer(child, on_notification), child, timeout)
        await client._initialize(client_name, start_timeout)
        return client

    @classmethod
    async def connect(cls, url: str, *, token: Optional[str] = None, timeout: Optional[float] = None,
                      start_timeout: float = 30.0, on_notification: Optional[NotificationHandler] = None,
                      client_name: str = "stepwire_host") -> "AsyncClient":
        """Connect to `stepwire serve --listen`: `ws://HOST:PORT` or `http://HOST:PORT`, with the
        bearer token the server was given (`STEPWIRE_TOKEN` when `token` is None)."""
        token = token if token is not None else (os.environ.get("STEPWIRE_TOKEN") or None)
        if url.startswith(("ws://", "wss://")):
            stream = await WebSocketStream.connect(url, token, open_timeout=start_timeout)
            client = cls(Peer(stream, on_notification), None, timeout)
        elif url.startswith("http://"):
            client = cls(HttpChannel(url, token), None, timeout)
        else:
            raise ValueError(f"connect takes a ws:// or http:// URL, not {url!r}")
        await client._initialize(client_name, start_timeout)
        return client

    async def _initialize(self, client_name: str, start_timeout: float) -> None:
        params = {"protocolVersion": PROTOCOL_VERSION,
                  "clientInfo": {"name": client_name, "version": __version__},
                  "capabilities": {"progress": True, "logMessages": True}}
        try:
            self.info = await self._channel.request("initialize", params, timeout=start_timeout)
            if isinstance(self._channel, Peer):
                await self._channel.notify("initialized", {})
        except BaseException:
            await self._abort()
            raise
        version = (self.info or {}).get("protocolVersion")
        if version not in SUPPORTED_VERSIONS:
            await self._abort()
            raise StepwireError(f"the server speaks protocol version {version}; this host speaks {SUPPORTED_VERSIONS}")

    # -- the agent plane -----------------------------------------------------------------
    async def request(self, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        """Any request by name; errors arrive as `ProtocolError` subclasses. A call cancelled by
        its caller or timed out (`TimeoutError`) is cancelled on the server too."""
        return await self._channel.request(method, params, timeout=timeout if timeout is not None else self.timeout)

    async def plan(self, params: PlanParams, timeout: Optional[float] = None) -> PlanResult:
        """`agent/plan`: the high-level policy's next subtask."""
        return await self.request("agent/plan", params, timeout)

    async def act(self, params: ActParams, timeout: Optional[float] = None) -> ActResult:
        """`agent/act`: the low-level policy's next action and whether the subtask is done."""
        return await self.request("agent/act", params, timeout)

    async def progress(self, params: ProgressUpdateParams, timeout: Optional[float] = None) -> ProgressUpdateResult:
        """`agent/progress`: the local-progress module's updated summary."""
        return await self.request("agent/progress", params, timeout)

    async def step(self, params: AgentStepParams, timeout: Optional[float] = None) -> AgentStepResult:
        """`agent/step`: one whole STEP-HRL step; keep `nextState` for the next call."""
        return await self.request("agent/step", params, timeout)

    # -- ending --------------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        """The child server's process id (stdio only)."""
        return self._child.process.pid if self._child else None

    async def close(self, grace: float = 5.0) -> None:
        """`shutdown` and `exit` (where there is a session), then the transport ends; a child
        that does not exit within `grace` seconds is killed."""
        if self._closed:
            return
        self._closed = True
        channel = self._channel
        if isinstance(channel, Peer) and not channel.closed:
            try:
                await channel.request("shutdown", None, timeout=grace)
                await channel.notify("exit", None)
            except (StepwireError, TimeoutError) as e:
                log.debug("no clean shutdown: %s", e)
        if self._child is not None:
            await self._child.wait_exit(grace)
        await self._abort(grace)

    async def _abort(self, grace: float = 1.0) -> None:
        self._closed = True
        if self._child is not None:
            await self._child.close(grace)
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
