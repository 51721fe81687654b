"""The manual's "HTML5 Websocket" examples, with its JavaScript client page (plain JS here).

    python examples/websocket/app.py      # then open http://127.0.0.1:5000/

`/echo` is the generator style (`@skitai.websocket(timeout)`), `/websocket/echo` the app
called once per message (`@skitai.websocket("message", timeout)`); the page talks to either
(`/?path=/websocket/echo`).
"""
from urllib.parse import parse_qs

import skitai


@skitai.websocket(60)  # seconds without a message before the server closes (1001)
def echo(environ, start_response):
    ws = environ["websocket"]
    ws.send(f"connected over {environ['SERVER_PROTOCOL']}")
    while True:
        message = yield
        if not message or message == "/quit":
            return  # ends the WebSocket (close 1000)
        yield "ECHO:" + message


@skitai.websocket("message", 60)
def direct(environ, start_response):
    message = parse_qs(environ["QUERY_STRING"])["message"][0]
    environ["websocket"].send("You said," + message)
    environ["websocket"].send("I said acknowledge")


if __name__ == "__main__":
    skitai.mount("/echo", echo)
    skitai.mount("/websocket/echo", direct)
    skitai.mount("/", "static")
    skitai.run(address="127.0.0.1", port=5000)
