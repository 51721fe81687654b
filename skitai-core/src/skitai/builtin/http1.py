"""HTTP/1.1 as the default connection protocol."""
from ..http1.connection import H1Connection
from ..plugin import hookimpl


@hookimpl
def skitai_register_protocols(protocols):
    protocols.add("http/1.1", H1Connection, alpn=("http/1.1",), default=True, priority=900)
