"""The peer's handling of what the agent server does not send today but the protocol allows
(`$/logMessage`, `$/progress`, requests from the server) and of broken frames. The server side
here is a scripted message stream: these are the host's own rules, not the server's."""

from __future__ import annotations

import asyncio
import logging

import pytest

from stepwire_host import ConnectionClosed
from stepwire_host.framing import FramingError, encode, read_frame
from stepwire_host.peer import Peer


class Scripted:
    """Hands out the given messages, then ends; keeps what the peer sends."""

    def __init__(self, messages) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        for m in messages:
            self.queue.put_nowait(m)
        self.sent = []

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def send(self, message) -> None:
        self.sent.append(message)

    async def receive(self):
        return await self.queue.get()

    async def closed_error(self, reason: str) -> ConnectionClosed:
        return ConnectionClosed(reason)

    async def close(self) -> None:
        self.end()


def test_notifications_reach_logging_and_the_handler(caplog):
    seen = []

    async def main():
        stream = Scripted([
            {"jsonrpc": "2.0", "method": "$/logMessage", "params": {"level": "warn", "message": "model is large"}},
            {"jsonrpc": "2.0", "method": "$/progress", "params": {"token": 1, "value": {"kind": "begin", "title": "loading"}}},
            {"jsonrpc": "2.0", "id": 7, "method": "host/whatever", "params": {}},
        ])
        peer = Peer(stream, on_notification=lambda method, params: seen.append(method))
        await asyncio.sleep(0.05)
        stream.end()
        await asyncio.sleep(0.05)
        with pytest.raises(ConnectionClosed):
            await peer.request("agent/step", {})
        return stream.sent

    with caplog.at_level(logging.DEBUG, logger="stepwire_host.server"):
        sent = asyncio.run(main())
    warnings = [r for r in caplog.records if r.name == "stepwire_host.server" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["model is large"]
    assert seen == ["$/logMessage", "$/progress"]
    # A request from the server is answered, not left hanging: this host serves none.
    assert sent == [{"jsonrpc": "2.0", "id": 7, "error": {"code": -32601, "message": "this host answers no requests (host/whatever)"}}]


def test_waiting_callers_fail_when_the_stream_ends():
    async def main():
        stream = Scripted([])
        peer = Peer(stream)
        waiting = asyncio.ensure_future(peer.request("agent/step", {}))
        await asyncio.sleep(0.05)
        stream.end()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(waiting, 2)

    asyncio.run(main())


def test_frames_round_trip_and_broken_ones_are_errors():
    async def read(data: bytes):
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame(reader)

    message = {"jsonrpc": "2.0", "id": 1, "result": {"text": "héllo"}}
    assert asyncio.run(read(encode(message))) == message
    assert asyncio.run(read(b"")) is None
    for broken in (b"Content-Length: x\r\n\r\n", b"Content-Length: 10\r\n\r\n{}", b"Content-Length: 2\r\n\r\n[x",
                   b"Content-Type: json\r\n\r\n{}", b"Content-Length: 2\r\n"):
        with pytest.raises(FramingError):
            asyncio.run(read(broken))
