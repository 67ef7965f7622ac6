"""The asyncio API of SimGateway and the handshake, without a client library."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from tradectl.sim import SimGateway
from tradectl.sim.protocol import API_PREFIX, FrameReader, encode_message, split_fields
from tradectl.sim.wirelog import read_wire_log

from .helpers import small_state


async def _handshake(
    port: int, versions: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(API_PREFIX + struct.pack(">I", len(versions)) + versions)
    return reader, writer


async def _messages(reader: asyncio.StreamReader, count: int) -> list[list[str]]:
    frames = FrameReader()
    out: list[list[str]] = []
    while len(out) < count:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "connection closed"
        out += [split_fields(p) for p in frames.feed(data)]
    return out


def test_async_context_manager_api(tmp_path: Path) -> None:
    async def scenario() -> None:
        wire_log = tmp_path / "wire.jsonl"
        async with SimGateway(small_state(), port=0, wire_log=wire_log) as sim:
            assert sim.host == "127.0.0.1" and sim.port > 0
            reader, writer = await _handshake(sim.port, b"v157..176")
            [[version, _]] = await _messages(reader, 1)
            assert version == "176"
            writer.write(encode_message([71, 2, 4, ""]))
            managed, next_id = (await _messages(reader, 2))[:2]
            assert managed == ["15", "1", "DU0000001"]
            assert next_id == ["9", "1", "1"]
            sim.control.set_price("AAPL", 123.0)
            assert sim.snapshot().prices["AAPL"] == 123.0
            writer.close()
        assert [r["msg"] for r in read_wire_log(wire_log)] == ["startApi"]

    asyncio.run(scenario())


def test_incompatible_client_versions_are_closed() -> None:
    async def scenario() -> None:
        async with SimGateway(small_state(), port=0) as sim:
            reader, writer = await _handshake(sim.port, b"v100..150")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()

    asyncio.run(scenario())
