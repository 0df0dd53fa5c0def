"""The blocking and asyncio clients against a real `stepwire serve --stdio` child."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from conftest import SLOW_ARGS, policy, slow_plan, step_params, validate
from stepwire_host import (
    AsyncClient,
    Client,
    InvalidParamsError,
    LimitExceededError,
    MethodNotFoundError,
    ProtocolError,
    RequestCancelledError,
    ServerExited,
    ServerStartError,
)


def test_every_agent_method_answers_in_the_schemas_shapes(binary, wire):
    with Client.spawn("rules") as agent:
        validate("initialize.result.json", agent.info)
        assert agent.info["capabilities"]["agent"]["policy"] == "rules"
        step = agent.step(step_params())
        assert step["action"] == "open box" and step["nextState"]["pendingAction"] == "open box"
        second = agent.step({**step_params(text="The box is open."), "state": step["nextState"]})
        assert second["nextState"]["steps"] == 2
        plan = agent.plan({"task": "open the box", "observation": {"text": "A box."}})
        act = agent.act({"subtask": plan["subtask"], "observation": {"text": "A box."}, "admissibleActions": ["look"]})
        assert act["action"] == "look"
        progress = agent.progress({"subtask": plan["subtask"], "action": "look", "observation": {"text": "A box."}})
        assert isinstance(progress["progress"], str)
    # initialize, initialized, 4 requests, shutdown, exit: every params and result validated.
    assert [m["method"] for m in wire.sent][:2] == ["initialize", "initialized"]
    assert [m["method"] for m in wire.sent][-2:] == ["shutdown", "exit"]
    assert wire.check_schemas() >= 12


def test_the_child_exits_cleanly_on_close(binary):
    agent = Client.spawn("rules")
    pid = agent.pid
    agent.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_protocol_errors_are_typed_with_code_and_data(binary):
    with Client.spawn("rules") as agent:
        with pytest.raises(MethodNotFoundError) as unknown:
            agent.request("agent/dance", {})
        assert unknown.value.code == -32601 and "agent/dance" in unknown.value.message
        with pytest.raises(InvalidParamsError) as invalid:
            agent.act({"observation": {"text": "no subtask"}})
        assert invalid.value.code == -32602 and "subtask" in invalid.value.message
        assert isinstance(invalid.value, ProtocolError)
        # The connection goes on after errors.
        assert agent.step(step_params())["action"] == "open box"


def test_a_limit_error_carries_its_code(binary):
    with Client.spawn(policy("tiny-llama"), args=SLOW_ARGS) as agent:
        with pytest.raises(LimitExceededError) as too_long:
            agent.plan({"task": "t", "observation": {"text": "hello " * 2000}})
        assert too_long.value.code == -31012 and "prompt" in too_long.value.message


def test_a_timeout_cancels_the_request_on_the_server(binary, wire):
    with Client.spawn(policy("tiny-llama"), args=SLOW_ARGS) as agent:
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            agent.plan(slow_plan(), timeout=0.3)
        assert time.monotonic() - t < 1.0
        cancelled = [m for m in wire.sent if m.get("method") == "$/cancelRequest"]
        assert len(cancelled) == 1
        # The server stopped the work: its answer is -32800, long before the plan would be done.
        answer = wire.answer_to(cancelled[0]["params"]["id"], timeout=1.5)
        assert answer["error"]["code"] == RequestCancelledError.code
        assert agent.step(step_params())["action"] in ("open box", "look")


def test_a_cancelled_future_cancels_the_request(binary, wire):
    with Client.spawn(policy("tiny-llama"), args=SLOW_ARGS) as agent:
        future = agent.submit("agent/plan", slow_plan())
        time.sleep(0.3)
        assert future.cancel()
        request = next(m for m in wire.sent if m.get("method") == "agent/plan")
        assert wire.answer_to(request["id"], timeout=1.5)["error"]["code"] == -32800


def test_a_server_killed_mid_request_raises_at_once(binary):
    agent = Client.spawn(policy("tiny-llama"), args=SLOW_ARGS)
    future = agent.submit("agent/plan", slow_plan())
    time.sleep(0.3)
    os.kill(agent.pid, signal.SIGKILL)
    with pytest.raises(ServerExited) as died:
        future.result(timeout=10)
    assert died.value.returncode == -signal.SIGKILL
    t = time.monotonic()
    with pytest.raises(ServerExited):
        agent.step(step_params())
    assert time.monotonic() - t < 1.0
    agent.close()


def test_a_server_that_cannot_start_says_why(binary, tmp_path):
    with pytest.raises(ServerExited) as failed:
        Client.spawn(str(tmp_path / "no-such-model"))
    assert failed.value.returncode not in (None, 0)
    assert "no-such-model" in failed.value.stderr_tail
    with pytest.raises(ServerStartError):
        Client.spawn("rules", binary=str(tmp_path / "not-stepwire"))


def test_server_stderr_reaches_logging(binary, caplog):
    with caplog.at_level(logging.INFO, logger="stepwire_host.server"):
        with Client.spawn("rules", client_name="log-test"):
            pass
    assert any("log-test" in r.getMessage() for r in caplog.records if r.name == "stepwire_host.server")


def test_a_garbage_collected_client_leaves_no_server(binary):
    import gc
    import subprocess

    code = ("import os, sys; from stepwire_host import Client; c = Client.spawn('rules'); "
            "print(c.pid, flush=True); del c; import gc; gc.collect(); os._exit(0)")
    out = subprocess.run([sys_executable(), "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(__import__("conftest").ROOT / "hosts" / "python")})
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the server outlived its host"
    gc.collect()


def test_a_killed_host_leaves_no_server(binary):
    import subprocess

    code = ("from stepwire_host import Client; c = Client.spawn('rules'); print(c.pid, flush=True); "
            "import time; time.sleep(60)")
    host = subprocess.Popen([sys_executable(), "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(__import__("conftest").ROOT / "hosts" / "python")})
    pid = int(host.stdout.readline())
    assert _alive(pid)
    host.kill()
    host.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the server outlived its killed host"


def sys_executable() -> str:
    import sys

    return sys.executable


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_async_client_over_stdio(binary, wire):
    async def main():
        async with await AsyncClient.spawn(policy("tiny-llama"), args=SLOW_ARGS) as agent:
            step = await agent.step(step_params())
            assert step["action"] in ("open box", "look")
            task = asyncio.create_task(agent.plan(slow_plan()))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(InvalidParamsError):
                await agent.act({"observation": {"text": "x"}})
            # Concurrent requests on one connection are answered each to its own caller.
            results = await asyncio.gather(*(agent.step(step_params(text=f"room {i}")) for i in range(4)))
            assert len(results) == 4

    asyncio.run(main())
    cancel = next(m for m in wire.sent if m.get("method") == "$/cancelRequest")
    assert wire.answer_to(cancel["params"]["id"], timeout=1.5)["error"]["code"] == -32800
    assert wire.check_schemas() >= 7
