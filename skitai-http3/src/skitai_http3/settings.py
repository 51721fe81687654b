"""The QUIC settings of the server, from Skitai's: certificate and key, idle timeout, flow-control
windows. Made in the master while it may still read a root-only key (`skitai_configure` runs
before the privilege drop), and inherited by the forked workers.

0-RTT is off unless `skitai.enable_http3_early_data()`: aioquic accepts early data only on a
resumed session, and without it no session ticket store is given, so every connection makes a
full handshake and nothing can be replayed (see `early` for what holds when it is on).
"""
from __future__ import annotations

from dataclasses import dataclass

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration

from skitai import abspath

KiB = 1024
MiB = 1024 * KiB


@dataclass
class Limits:
    """What a peer may send before the server has consumed it, and how much response data waits
    in aioquic per stream (the rest waits in the exchange's outbox, files unread)."""

    max_streams: int = 100               # concurrent request streams a client may open
    stream_window: int = 1 * MiB         # request body bytes a stream may have in flight
    connection_window: int = 16 * MiB    # all streams of a connection together
    quic_buffer: int = 1 * MiB           # response bytes of a stream aioquic holds (sent and not
    #                                      acknowledged, or not sent): a stream's send window, so
    #                                      at most this much per round trip
    high_water: int = 256 * KiB          # an app producing a body waits above this ...
    low_water: int = 64 * KiB            # ... until it falls under this
    max_pushes_per_request: int = 16     # server push: promises one response may make ...
    max_pushed_streams: int = 32         # ... and pushed responses in flight on a connection
    reset_burst: int = 200               # requests the client cancels at once (rapid reset) ...
    reset_rate: float = 100.0            # ... and per second after that
    malformed_burst: int = 100           # malformed or refused requests (each costs a reset) ...
    malformed_rate: float = 10.0
    small_frame: int = 32                # request STREAM frames under this many bytes, not ending
    small_frames_burst: int = 1000       # the stream, cost from a budget (`floods`) ...
    small_frames_rate: float = 500.0
    uni_streams_burst: int = 16          # unidirectional streams beyond HTTP/3's three ...
    uni_streams_rate: float = 1.0
    uni_bytes_burst: int = 64 * KiB      # bytes on unidirectional streams (QPACK encoder, control) ...
    uni_bytes_rate: float = 4 * KiB
    uni_bytes_per_request: int = 4 * KiB  # ... and what each request earns back
    retired_ids_burst: int = 64          # connection IDs the peer retires (each makes a new one) ...
    retired_ids_rate: float = 4.0


def quic_configuration(config, limits: Limits) -> QuicConfiguration:
    """aioquic's server configuration for `config` (a `skitai.config.ServerConfig` whose TLS
    files are set); an unreadable certificate or key is a ValueError saying which."""
    quic = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        idle_timeout=config.keep_alive,
        max_data=limits.connection_window,
        max_stream_data=limits.stream_window,
    )
    try:  # relative paths are from the script's folder, as for the TCP listener's
        quic.load_cert_chain(abspath(config.ssl_certfile), abspath(config.ssl_keyfile), config.ssl_passphrase)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"HTTP/3 cannot load the certificate {config.ssl_certfile} and key "
                         f"{config.ssl_keyfile}: {error}") from error
    return quic
