"""A raw-socket HTTP/1.1 client for the requests real clients refuse to send."""
from __future__ import annotations

import socket


def exchange(port: int, data: bytes, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    """Send `data`, then read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
