"""The wire: what fan-out costs with nothing but a plain `websockets` server broadcasting one pre-encoded frame
to every client — no Django, Channels or ASGI server. The benchmark drives it with the same clients as the
product and compares: `fanout_vs_wire`.

    python -m moderator.benchmark.wire --port P --trigger-port T --size BYTES

Every websocket first gets a snapshot (as the product's pages do), then every broadcast. A broadcast is
triggered by a POST on the trigger port whose body is a marker (plain HTTP/1.1, keep-alive): a frame of `--size`
bytes shaped like the product's update, carrying the marker the clients time it by.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from websockets.asyncio.server import broadcast, serve

SNAPSHOT = json.dumps({"type": "snapshot", "version": 0, "summary": "", "rows": "", "timeline": "", "viewers": []},
                      separators=(",", ":"))


class Wire:
    def __init__(self, size: int) -> None:
        self.size = size
        self.clients: set = set()
        self.version = 0

    async def websocket(self, connection) -> None:
        await connection.send(SNAPSHOT)
        self.clients.add(connection)
        try:
            await connection.wait_closed()
        finally:
            self.clients.discard(connection)

    def frame(self, marker: int) -> str:
        self.version += 1
        update = {"type": "update", "conference_id": "fan-out", "since": self.version, "version": self.version,
                  "summary": "", "rows": {}, "timeline": f"<li>bench-{marker}-</li>", "announce": []}
        text = json.dumps(update, separators=(",", ":"))
        return text[:-1] + ',"padding":"' + "x" * max(0, self.size - len(text) - 14) + '"}'

    async def trigger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A minimal keep-alive HTTP/1.1 server: each request broadcasts the marker in its body."""
        try:
            while await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                marker = int(await reader.readexactly(length))
                broadcast(self.clients, self.frame(marker))  # encoded once, written to every socket
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main(port: int, trigger_port: int, size: int) -> None:
    wire = Wire(size)
    async with serve(wire.websocket, "127.0.0.1", port, compression=None, max_queue=None):
        server = await asyncio.start_server(wire.trigger, "127.0.0.1", trigger_port)
        async with server:
            await asyncio.Future()  # until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trigger-port", type=int, required=True)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.trigger_port, args.size))
