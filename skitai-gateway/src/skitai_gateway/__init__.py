"""skitai-gateway: upstream HTTP for Skitai apps (`was.get`, `was.post` ... to absolute URLs and
to backend aliases of the kinds PROTO_HTTP and PROTO_HTTPS, with load balancing and map), and the
RPC stubs `was.xmlrpc` and `was.jsonrpc`; mounted aliases as a reverse proxy and API gateway
(`skitai.enable_gateway`: bearer JWTs), and a forward proxy (`skitai.enable_proxy`).

Loaded through the `skitai` entry-point group as the plugin `gateway` (`skitai_gateway.plugin`).
"""
