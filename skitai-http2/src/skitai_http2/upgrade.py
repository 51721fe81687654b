"""h2c by `Upgrade: h2c` from HTTP/1.1 (RFC 7540 3.2): the HTTP/1.1 connection hands itself
over once the request, body included, is read; that request becomes stream 1."""
from __future__ import annotations

from skitai.plugin import ProtocolUpgrade

from .connection import H2ServerConnection
from .session import valid_settings_header


class H2cUpgrade(ProtocolUpgrade):
    def accepts(self, exchange) -> bool:
        """Cleartext only (h2 over TLS is chosen by ALPN), with exactly one valid
        `HTTP2-Settings` that `Connection` names too; otherwise HTTP/1.1 serves the request."""
        if exchange.scheme != "http":
            return False
        settings = [value for name, value in exchange.headers if name == "http2-settings"]
        connection = (exchange.header("connection") or "").lower()
        return (len(settings) == 1 and "http2-settings" in (t.strip() for t in connection.split(","))
                and valid_settings_header(settings[0]))

    def take_over(self, server, exchange):
        return H2ServerConnection(server, upgrade=exchange)
