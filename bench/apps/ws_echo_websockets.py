"""WebSocket echo server with the `websockets` library's own asyncio server (bench/.venvs/peers).

The reference point for the ws-echo scenario: a pure-Python asyncio server (the default
asyncio event loop, no uvloop) that echoes every message back as it came (text as text,
bytes as bytes). Compression is off on the server too (the bench client never offers it).
The port is given as --port=N by run.py.
"""
import argparse
import asyncio

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    asyncio.run(main(parser.parse_args().port))
