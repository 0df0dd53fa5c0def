"""stepwire_host: drive a stepwire agent server from Python.

* `Client` / `AsyncClient`: the agent plane (`agent/plan`, `agent/act`, `agent/progress`,
  `agent/step`) over a `stepwire serve --stdio` child, a WebSocket or HTTP POST.
* `run_episode`: play a Gymnasium-style text environment with `agent/step`, recording the
  same JSONL lines as `stepwire run --record`.
* `stepwire_host.protocol`: the protocol's types and error classes, generated from `schemas/`.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ConnectionClosed,
    HttpStatusError,
    ProtocolError,
    ServerExited,
    ServerStartError,
    StepwireError,
)
from .client import AsyncClient, find_binary  # noqa: E402
from .sync import Client  # noqa: E402
from .episode import InfoKeys, arun_episode, run_episode  # noqa: E402
from .protocol import *  # noqa: E402,F401,F403  (the generated error classes and types)

__all__ = [
    "AsyncClient", "Client", "find_binary", "run_episode", "arun_episode", "InfoKeys", "StepwireError", "ProtocolError", "ConnectionClosed",
    "ServerExited", "ServerStartError", "HttpStatusError",
]
