"""The hello-world app as ASGI, for uvicorn: the reference for a Python server on uvloop and
httptools (issue 20). Same status, header and body as `hello.py`."""

START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain")]}
BODY = {"type": "http.response.body", "body": b"Hello World"}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    await send(START)
    await send(BODY)
