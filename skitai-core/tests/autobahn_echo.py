"""The WebSocket echo server the Autobahn TestSuite's cases run against (see autobahn_suite.py):
every text or binary message comes back as it came, an empty one too."""
import skitai


@skitai.websocket(60)
def app(environ, start_response):
    while True:
        message = yield          # str or bytes; None when the client closed
        if message is None:
            return
        yield message            # echoed back with the same type


skitai.mount("/", app)
skitai.set_websocket_max_message_size(64 * 1024 * 1024)   # the 9.x cases send up to 16 MiB
skitai.run(address="127.0.0.1", port=9001)                 # tests give --port=N
