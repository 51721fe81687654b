"""WebSocket (RFC 6455, and RFC 8441 over HTTP/2) for mounted WSGI apps, on wsproto.

* `handshake`: reading a handshake request and building its answer (sans-IO);
* `deflate`: permessage-deflate whose inflating stops at the message size limit;
* `session`: frames to messages and back, limits and the closing handshake (sans-IO);
* `connection`: the asyncio protocol a connection (or an HTTP/2 stream) switches to;
* `channel`: `environ["websocket"]`, what the app talks to, and the drivers that feed it;
* `endpoint`: the request handler that runs the app's handshake call;
* `decorator`: `skitai.websocket`, the spec's way for an app to accept.
"""
