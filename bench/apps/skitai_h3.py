"""Skitai serving HTTP/3 (and HTTPS on TCP, HTTP/2 by ALPN) for bench/h3.py: the spec's hello
app at /hello and the large bodies of `large.py` at /large.

    python skitai_h3.py --port=TCP   (env: H3_CERT, H3_KEY, H3_QUIC, H3_WORKERS)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hello  # noqa: E402
import large  # noqa: E402

import skitai  # noqa: E402

if __name__ == "__main__":
    skitai.enable_ssl(os.environ["H3_CERT"], os.environ["H3_KEY"])
    skitai.mount("/hello", hello.app)
    skitai.mount("/large", large.app)
    skitai.log_off("/")
    skitai.run(port=5000, quic=int(os.environ["H3_QUIC"]), threads=4, workers=int(os.environ.get("H3_WORKERS", "1")))
