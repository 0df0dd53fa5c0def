#!/usr/bin/env python3
"""A small environment-plane client over a bridge subprocess's pipes, standard library only:
what the bridges' tests and `bench/` use to drive a bridge call by call (`BridgeClient`), and
`play_expert`, one expert episode with per-call timings.

Replaying an expert over many episodes is `stepwire run --policy expert` (the one replay runner:
jobs, sampling, recording, resume), e.g. from the repository root:

    stepwire run --env alfworld --split valid_unseen --policy expert --max-steps 200 --jobs 2
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional, Sequence


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data


class BridgeClient:
    """A stepwire environment-plane client over a bridge subprocess's stdin/stdout."""

    def __init__(self, cmd: Sequence[str], stderr: Any = None, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, start_new_session: bool = False) -> None:
        self.cmd = list(cmd)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                     env=env, cwd=cwd, start_new_session=start_new_session)
        self._next_id = 0
        self._responses: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.notifications: List[dict] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.init_result: Optional[dict] = None

    # -- framing ---------------------------------------------------------------------------
    def _read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        self._responses.put(None)
                        return
                    line = line.strip()
                    if not line:
                        break
                    k, _, v = line.decode("ascii").partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                if length is None:
                    raise RuntimeError("frame without Content-Length")
                body = out.read(length)
                msg = json.loads(body.decode("utf-8"))
                if "method" in msg and "id" not in msg:
                    self.notifications.append(msg)
                else:
                    self._responses.put(msg)
        except Exception as e:  # pragma: no cover - reported to the waiting caller
            self._responses.put({"_reader_error": repr(e)})

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send_request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        msg: dict = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def wait_response(self, rid: int, timeout: float = 300.0) -> dict:
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no answer to request {rid} within {timeout} s")
            try:
                msg = self._responses.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise EOFError(f"the bridge closed its stdout (exit code {self.proc.poll()})")
            if "_reader_error" in msg:
                raise RuntimeError(msg["_reader_error"])
            if msg.get("id") == rid:
                return msg

    def request(self, method: str, params: Any = None, timeout: float = 300.0) -> Any:
        msg = self.wait_response(self.send_request(method, params), timeout)
        if "error" in msg:
            e = msg["error"]
            raise RpcError(e.get("code"), e.get("message", ""), e.get("data"))
        return msg.get("result")

    # -- the environment plane ---------------------------------------------------------------
    def initialize(self, timeout: float = 300.0) -> dict:
        self.init_result = self.request("initialize", {"protocolVersion": 1, "clientInfo": {"name": "bridge_client"},
                                                       "capabilities": {}}, timeout)
        self.notify("initialized", {})
        return self.init_result

    def tasks(self) -> List[dict]:
        return self.request("env/tasks", {})["tasks"]

    def reset(self, task: str, split: Optional[str] = None, variation: Optional[int] = None,
              seed: Optional[int] = None, options: Optional[dict] = None) -> dict:
        p: dict = {"task": task}
        if split is not None:
            p["split"] = split
        if variation is not None:
            p["variation"] = variation
        if seed is not None:
            p["seed"] = seed
        if options:
            p["options"] = options
        return self.request("env/reset", p)

    def step(self, action: str) -> dict:
        return self.request("env/step", {"action": action})

    def admissible(self) -> List[str]:
        return self.request("env/admissibleActions", {})["actions"]

    def expert(self) -> Optional[str]:
        return self.request("env/expertAction", {})["action"]

    def expert_advice(self) -> dict:
        """The whole `env/expertAction` result: `action`, and `subtask` when the expert names one."""
        return self.request("env/expertAction", {})

    def close(self, timeout: float = 60.0) -> Optional[int]:
        """shutdown + exit; returns the exit code (kills the bridge when it does not go)."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout)
                self.notify("exit")
                self.proc.stdin.close()  # type: ignore[union-attr]
            return self.proc.wait(timeout)
        except Exception:
            self.kill()
            return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- one expert episode -----------------------------------------------------------------------------------


def play_expert(client: BridgeClient, task: str, split: str, variation: int, max_steps: int,
                seed: Optional[int] = None, options: Optional[dict] = None) -> Dict[str, Any]:
    t0 = time.time()
    r = client.reset(task, split, variation, seed=seed, options=options)
    t_reset = time.time() - t0
    steps, score, won, done, note = 0, 0.0, False, False, ""
    step_time = 0.0
    while steps < max_steps:
        try:
            action = client.expert()
        except RpcError as e:
            note = f"no expert: {e.message}"
            break
        if action is None:
            note = "expert has no action"
            break
        try:
            t1 = time.time()
            s = client.step(action)
            step_time += time.time() - t1
        except RpcError as e:
            note = f"step {action!r}: {e.message} ({e.code})"
            break
        steps += 1
        score, won, done = s["score"], s["won"], s["done"]
        if done:
            break
    if not done and not note:
        note = "step limit"
    return {"task": task, "split": split, "variation": variation, "won": won, "done": done, "score": score,
            "maxScore": r.get("maxScore"), "steps": steps, "resetSeconds": round(t_reset, 3),
            "stepMs": round(1000 * step_time / steps, 2) if steps else None,
            "seconds": round(time.time() - t0, 2), "note": note}
