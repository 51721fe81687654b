"""skitai-gateway: upstream HTTP for Skitai apps (`was.get`, `was.post` ... to absolute URLs and
to backend aliases of the kinds PROTO_HTTP and PROTO_HTTPS, or HTTP/2 ones of the kinds
`PROTO_H2` and `PROTO_H2C`, with load balancing and map), the RPC stubs `was.xmlrpc` and
`was.jsonrpc`, and `was.ws`; mounted aliases as a reverse proxy and API gateway
(`skitai.enable_gateway`: bearer JWTs), and a forward proxy (`skitai.enable_proxy`).

Loaded through the `skitai` entry-point group as the plugin `gateway` (`skitai_gateway.plugin`).
"""
from .names import PROTO_H2, PROTO_H2C

__all__ = ["PROTO_H2", "PROTO_H2C"]
