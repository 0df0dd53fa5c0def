"""The clients against a real `stepwire serve --listen` (WebSocket and HTTP, bearer token)."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import SLOW_ARGS, slow_plan, step_params, validate
from stepwire_host import (
    AsyncClient,
    Client,
    HttpStatusError,
    InvalidParamsError,
    MethodNotFoundError,
    ServerStartError,
)


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_steps_and_errors_over_the_network(tiny_server, scheme):
    url = f"{scheme}://{tiny_server.addr}"
    with Client.connect(url, token=tiny_server.token) as agent:
        validate("initialize.result.json", agent.info)
        step = agent.step(step_params())
        validate("agent.step.result.json", step)
        assert step["action"] in ("open box", "look")
        nxt = agent.step({**step_params(text="The box is open."), "state": step["nextState"]})
        assert nxt["nextState"]["steps"] == 2
        with pytest.raises(MethodNotFoundError) as unknown:
            agent.request("agent/dance", {})
        assert unknown.value.code == -32601
        with pytest.raises(InvalidParamsError) as invalid:
            agent.act({"observation": {"text": "no subtask"}})
        assert invalid.value.code == -32602


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_a_wrong_token_is_refused_with_the_status(tiny_server, scheme):
    with pytest.raises(HttpStatusError) as refused:
        Client.connect(f"{scheme}://{tiny_server.addr}", token="wrong")
    assert refused.value.status == 401 and "token" in refused.value.body


def test_an_unreachable_server_is_a_clear_error():
    with pytest.raises(ServerStartError):
        Client.connect("http://127.0.0.1:9", token="x")
    with pytest.raises(ServerStartError):
        Client.connect("ws://127.0.0.1:9", token="x", start_timeout=5)


def test_websocket_cancellation_reaches_the_server(tiny_server, wire):
    with Client.connect(f"ws://{tiny_server.addr}", token=tiny_server.token) as agent:
        with pytest.raises(TimeoutError):
            agent.plan(slow_plan(), timeout=0.3)
        cancel = next(m for m in wire.sent if m.get("method") == "$/cancelRequest")
        assert wire.answer_to(cancel["params"]["id"], timeout=1.5)["error"]["code"] == -32800
    assert wire.check_schemas() >= 2


def test_http_timeout_drops_the_call_and_the_next_one_works(tiny_server):
    with Client.connect(f"http://{tiny_server.addr}", token=tiny_server.token) as agent:
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            agent.plan(slow_plan(), timeout=0.3)
        assert time.monotonic() - t < 1.0
        assert agent.step(step_params())["nextState"]["steps"] == 1


def test_async_client_over_websocket_and_http(tiny_server):
    async def main():
        for scheme in ("ws", "http"):
            async with await AsyncClient.connect(f"{scheme}://{tiny_server.addr}", token=tiny_server.token) as agent:
                results = await asyncio.gather(*(agent.step(step_params(text=f"room {i}")) for i in range(3)))
                assert all(r["nextState"]["steps"] == 1 for r in results)
                with pytest.raises(InvalidParamsError):
                    await agent.progress({"subtask": "s"})

    asyncio.run(main())


def test_a_server_that_goes_away_fails_the_websocket_client(binary):
    from conftest import Server, policy

    server = Server(binary, policy("tiny-llama"), SLOW_ARGS)
    agent = Client.connect(f"ws://{server.addr}", token=server.token)
    future = agent.submit("agent/plan", slow_plan())
    time.sleep(0.3)
    server.process.kill()
    server.process.wait()
    from stepwire_host import ConnectionClosed

    with pytest.raises(ConnectionClosed):
        future.result(timeout=10)
    with pytest.raises(ConnectionClosed):
        agent.step(step_params())
    agent.close()


def test_an_unsupported_protocol_version_is_typed_with_its_data(tiny_server):
    from stepwire_host import UnsupportedProtocolVersionError

    with Client.connect(f"http://{tiny_server.addr}", token=tiny_server.token) as agent:
        with pytest.raises(UnsupportedProtocolVersionError) as refused:
            agent.request("initialize", {"protocolVersion": 99, "clientInfo": {"name": "future-host"}})
    assert refused.value.code == -31005
    validate("error.unsupportedVersion.data.json", refused.value.data)
    assert refused.value.data["requested"] == 99 and 1 in refused.value.data["supported"]
