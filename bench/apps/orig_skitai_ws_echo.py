"""WebSocket echo for the ORIGINAL skitai 0.57.16 (bench/.venvs/orig), the ws-echo baseline.

The app style of the original's manual ("HTML5 Websocket"): `@skitai.websocket(60)` on a
generator, one per connection (the original's WS_SESSION mode); `yield` waits for the next
message (None when the client has closed), `yield message` sends a reply.
`workers=1` forks a master plus one serving worker, as in orig_skitai_hello.py. The client
connects to /echo rather than /, which 0.57.16 would always log.
"""
import os

import skitai


@skitai.websocket(60)  # idle timeout in seconds
def app(environ, start_response):
    while True:
        message = yield  # the next message from the client; None when it closed
        if message is None:
            return
        yield message  # the echo


skitai.mount("/", app)
skitai.log_off("/")
skitai.run(address="127.0.0.1", port=5000, workers=1, threads=int(os.environ.get("BENCH_THREADS", "4")))
