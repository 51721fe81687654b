"""HTTP/3 over QUIC for Skitai (aioquic), registered as the `http3` plugin."""
