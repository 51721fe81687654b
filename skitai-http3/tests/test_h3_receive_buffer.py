"""The UDP sockets the master binds for HTTP/3 ask the kernel for a receive buffer that holds a
burst of handshakes (4 MiB, or the most the kernel allows): with the default 208 KiB, 100 clients' Initials
at once overflowed it and each lost Initial cost its client a retransmission timeout."""
from __future__ import annotations

import socket
from pathlib import Path

from skitai_http3.steering import bind_group

WANTED = 4 * 1024 * 1024


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_socket_of_the_group_gets_the_receive_buffer():
    cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
    group = bind_group("127.0.0.1", free_udp_port(), 2)
    try:
        assert len(group) == 4
        for sock in group:
            # Linux grants what was asked up to rmem_max, and doubles it for its bookkeeping
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * min(WANTED, cap)
    finally:
        for sock in group:
            sock.close()
