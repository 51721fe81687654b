"""WebSocket echo for the Skitai under test (bench/.venvs/skitai), the ws-echo scenario.

Uses Skitai's WebSocket API for a plain WSGI app (it follows the original's manual,
"HTML5 Websocket"): the decorated app is a generator, one per connection; `yield`
with no value waits for the next message (None once the client has closed), and
`yield message` sends a reply. Returning ends the WebSocket with close code 1000.
Threads come from BENCH_THREADS (default 4; 0 runs the generators on the event-loop
thread). Access logging is off. The port is given as --port=N by run.py.
"""
import os

import skitai


@skitai.websocket(60)  # idle timeout in seconds
def app(environ, start_response):
    while True:
        message = yield  # the next message from the client (str or bytes); None when it closed
        if message is None:
            return  # ends the WebSocket (close 1000)
        yield message  # the echo


skitai.mount("/", app)
if not os.environ.get("BENCH_ACCESS_LOG"):  # bench/callgrind.py --access-log
    skitai.log_off("/")
skitai.run(address="127.0.0.1", port=5000, threads=int(os.environ.get("BENCH_THREADS", "4")))
