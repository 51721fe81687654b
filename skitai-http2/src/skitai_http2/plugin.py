"""The skitai-http2 plugin: HTTP/2 through the core's protocol hook only.

* h2 over TLS, offered by ALPN as "h2" (HTTP/1.1 stays the fallback);
* h2c with prior knowledge: a plain connection that starts with the HTTP/2 preface;
* h2c by `Upgrade: h2c` on an HTTP/1.1 request.
"""
from skitai.plugin import hookimpl

from .connection import H2ServerConnection
from .framing import PREFACE
from .upgrade import H2cUpgrade


@hookimpl
def skitai_register_protocols(protocols):
    protocols.add("h2", H2ServerConnection, alpn=("h2",), preface=PREFACE)
    protocols.add_upgrade("h2c", H2cUpgrade())
