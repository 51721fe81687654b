"""ASGI WebSocket echo app for hypercorn (bench/.venvs/peers), loaded as `ws_echo_asgi:app`.

Accepts every WebSocket and sends each message back as it came (text as text, bytes as
bytes) until the client disconnects. Plain HTTP requests get a 200 "ok", and the lifespan
protocol is answered, so hypercorn logs no warnings about it.
"""


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await websocket_echo(receive, send)
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def websocket_echo(receive, send):
    while True:
        event = await receive()
        kind = event["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
        elif kind == "websocket.disconnect":
            return
