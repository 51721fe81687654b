"""The names the gateway adds, without what serves them: its own alias kinds, and the `was`
services of its corequests. The plugin registers them when it loads; the clients behind the
services (aiohttp, httpx) are imported at the first use of one of them (see `services`)."""

PROTO_H2 = "h2"
PROTO_H2C = "h2c"
HTTP2_KINDS = (PROTO_H2, PROTO_H2C)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")  # was.get, was.post ...
SERVICES = (*(method.lower() for method in METHODS), "upload", "xmlrpc", "jsonrpc", "ws")
