"""Skitai serving HTTP/3 (and HTTPS on TCP, HTTP/2 by ALPN) for bench/h3.py: the spec's hello
app at /hello and the large bodies of `large.py` at /large.

    python skitai_h3.py --port=TCP
    (env: H3_CERT, H3_KEY, H3_QUIC, H3_WORKERS, H3_MAX_STREAMS, H3_MAX_QUEUED)

H3_MAX_STREAMS sets the concurrent request streams a connection may open (the plugin's
`Limits.max_streams`, 100 by default; there is no public setting for it): the bench gives it
aioquic's fixed 128, which hypercorn offers, so that its load client, which opens as many
streams as the server allows, runs at the same concurrency against either server.
H3_MAX_QUEUED is `skitai.set_max_queued_requests` (1024 per worker by default, 503 beyond): the
bench's 10 connections x 128 streams put up to 1,280 requests in flight at once, and hypercorn
queues them without a bound.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hello  # noqa: E402
import large  # noqa: E402

import skitai  # noqa: E402

if __name__ == "__main__":
    if os.environ.get("H3_MAX_STREAMS"):
        from skitai_http3 import quic  # the limits live with the QUIC side, imported when HTTP/3 is on
        quic.LIMITS.max_streams = int(os.environ["H3_MAX_STREAMS"])
    if os.environ.get("H3_MAX_QUEUED"):
        skitai.set_max_queued_requests(int(os.environ["H3_MAX_QUEUED"]))
    skitai.enable_ssl(os.environ["H3_CERT"], os.environ["H3_KEY"])
    skitai.mount("/hello", hello.app)
    skitai.mount("/large", large.app)
    skitai.log_off("/")
    skitai.run(port=5000, quic=int(os.environ["H3_QUIC"]), threads=4, workers=int(os.environ.get("H3_WORKERS", "1")))
