"""stepwire-bridge: write a stepwire environment bridge in Python.

    import stepwire_bridge as sw

    class Coin(sw.Environment):
        name = "coin"
        def tasks(self):
            return [sw.Task("flip", splits={"train": 1})]
        def reset(self, task, split, variation, seed, options):
            return sw.Reset("A coin lies here.", "Flip the coin.")
        def step(self, action):
            if action != "flip coin":
                raise sw.InvalidAction(f"unknown action {action!r}")
            return sw.Step("Heads!", reward=1, score=1, done=True, won=True)

    if __name__ == "__main__":
        sw.serve(Coin)

Framing, JSON-RPC, lifecycle, cancellation and the env/* methods are handled here; standard
library only.
"""

from .environment import Environment
from .errors import (
    BridgeError,
    EnvironmentCrashed,
    EpisodeOver,
    InvalidAction,
    InvalidParams,
    NoEpisode,
    NoExpert,
    RequestCancelled,
    UnknownTask,
)
from .framing import DEFAULT_MAX_MESSAGE_SIZE
from .author import is_cancelled, log, progress
from .contract import PROTOCOL_VERSION
from .server import Server
from .stdio import guard_stdio, serve
from .subtasks import SubtaskNames
from .values import Expert, Observation, Reset, Split, Step, Task

__version__ = "0.1.0"

__all__ = [
    "Environment",
    "Task",
    "Split",
    "Observation",
    "Reset",
    "Step",
    "Expert",
    "SubtaskNames",
    "serve",
    "Server",
    "guard_stdio",
    "log",
    "progress",
    "is_cancelled",
    "BridgeError",
    "InvalidAction",
    "EnvironmentCrashed",
    "UnknownTask",
    "EpisodeOver",
    "NoEpisode",
    "NoExpert",
    "InvalidParams",
    "RequestCancelled",
    "PROTOCOL_VERSION",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "__version__",
]
