"""Every datagram of a QUIC connection reaches the worker process that holds the connection.

A TCP connection is one socket, accepted by one worker; QUIC datagrams all arrive at one UDP
port, and a socket shared by the workers (what hypercorn does) hands each datagram to whichever
worker reads first, which then knows nothing of the connection. Here the master binds a group
of `SO_REUSEPORT` sockets on the port, two per worker (two generations, see below), and a
classic BPF program attached to the group (`SO_ATTACH_REUSEPORT_CBPF`, Linux) picks the
socket for each datagram from the first byte of its destination connection ID:

* short-header packets (every packet once the handshake is done) carry a connection ID the
  server chose; each worker makes its IDs with a first byte whose residue modulo the group's
  size is its own socket's index (`steer_connection_ids`), so the program's `byte % size` finds
  that socket, whatever the client's address or port (migration included);
* long-header Initial and 0-RTT packets go to the current generation's socket `byte % workers`:
  a new connection's first flight carries an ID the client chose at random, and its
  retransmissions the same one, so they all reach one worker; the server's IDs keep that
  residue, so the client's Initial acknowledgements follow;
* long-header Handshake packets always carry an ID the server chose: they go where short-header
  ones do, so a handshake that began at a worker of the previous generation still completes there
  after a reload has moved new connections to the other half (by the generation they would be
  lost, and the handshake with them). A client sends no Initial packet once it sends Handshake
  ones (RFC 9001 4.9.1), so only its first Handshake packet, coalesced behind its last Initial,
  can be steered by the generation: it is sent again alone.

Generations make graceful reloads clean: the old workers keep their sockets (indexes
`0..N-1` or `N..2N-1`) for the connections they drain, while the new ones read the other
half and attach a program that sends new connections to them. The generation flips at each
reload (`GENERATION_ENV`, inherited by the re-executed master).

The connection IDs (and their stateless reset tokens) are set through aioquic internals (its first connection ID and
`_replenish_connection_ids`), pinned by the plugin's aioquic version bound.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct

from skitai.plugin import StartupError

SO_ATTACH_REUSEPORT_CBPF = getattr(socket, "SO_ATTACH_REUSEPORT_CBPF", 51)
GENERATION_ENV = "SKITAI_HTTP3_GENERATION"
# SO_RCVBUF asked for each socket (Linux caps it at net.core.rmem_max): the default 208 KiB holds
# about 90 datagrams, so a burst of handshakes (100 clients' 1,200-byte Initials at once) lost
# some, and each lost Initial cost its client a retransmission timeout (1 s, then 2, then 4).
RECEIVE_BUFFER = 4 * 1024 * 1024
QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF  # RFC 9369, which aioquic also speaks: its long packet types differ from v1's

# classic BPF opcodes (linux/filter.h)
_LDB_ABS = 0x30    # A = packet byte [k]
_LDW_ABS = 0x20    # A = packet 32-bit word [k], network order
_JEQ = 0x15        # if A == k: jt else jf
_AND = 0x54        # A &= k
_JSET = 0x45       # if A & k: jt else jf
_MOD = 0x94        # A %= k
_ADD = 0x04        # A += k
_RET_A = 0x16      # return A


def steering_program(workers: int, generation: int) -> list[tuple[int, int, int, int]]:
    """The program for a group of `2 * workers` sockets whose generation `generation` takes
    new connections; offsets are into the UDP payload (the QUIC packet)."""
    size = 2 * workers
    return [
        (_LDB_ABS, 0, 0, 0),              # 0: the first byte: header form and long packet type
        (_JSET, 0, 16, 0x80),             # 1: long header -> 2, short -> 18
        (_LDW_ABS, 0, 0, 1),              # 2: the version
        (_JEQ, 4, 0, QUIC_V2),            # 3: v2 -> 8
        (_JEQ, 0, 6, QUIC_V1),            # 4: v1 -> 5; another (to be negotiated) -> 11
        (_LDB_ABS, 0, 0, 0),              # 5: v1 types: Initial 0, 0-RTT 1, Handshake 2
        (_AND, 0, 0, 0x30),               # 6
        (_JEQ, 7, 3, 0x20),               # 7: Handshake -> 15, else -> 11
        (_LDB_ABS, 0, 0, 0),              # 8: v2 types: Initial 1, 0-RTT 2, Handshake 3
        (_AND, 0, 0, 0x30),               # 9
        (_JEQ, 4, 0, 0x30),               # 10: Handshake -> 15, else -> 11
        (_LDB_ABS, 0, 0, 6),              # 11: Initial, 0-RTT: the destination ID's first byte
        (_MOD, 0, 0, workers),            # 12
        (_ADD, 0, 0, generation * workers),   # 13: into the current generation's half
        (_RET_A, 0, 0, 0),                # 14
        (_LDB_ABS, 0, 0, 6),              # 15: Handshake: the destination ID's first byte
        (_MOD, 0, 0, size),               # 16: the socket its issuer made it for
        (_RET_A, 0, 0, 0),                # 17
        (_LDB_ABS, 0, 0, 1),              # 18: short: the destination ID's first byte
        (_MOD, 0, 0, size),               # 19: the socket its issuer made it for
        (_RET_A, 0, 0, 0),                # 20
    ]


def attach_steering(sock: socket.socket, workers: int, generation: int) -> None:
    """Attach the program to the group `sock` belongs to (any member will do)."""
    program = steering_program(workers, generation)
    import ctypes  # here: the plugin is loaded by every server, steering only where HTTP/3 is on

    filters = (ctypes.c_uint8 * (8 * len(program)))()
    for index, (code, jt, jf, k) in enumerate(program):
        struct.pack_into("HBBI", filters, 8 * index, code, jt, jf, k)
    fprog = struct.pack("HL", len(program), ctypes.addressof(filters))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def bind_group(address: str, port: int, workers: int) -> list[socket.socket]:
    """`2 * workers` UDP sockets on one port in one `SO_REUSEPORT` group, in index order (the
    kernel numbers a group's sockets in the order they were bound), each asking for a receive
    buffer of `RECEIVE_BUFFER`."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise StartupError("HTTP/3 with workers needs SO_REUSEPORT (Linux)")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    group = []
    try:
        for _ in range(2 * workers):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            group.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((address, port))
        attach_steering(group[0], workers, current_generation())
    except OSError as error:
        for sock in group:
            sock.close()
        host = f"[{address}]" if ":" in address else address
        raise StartupError(f"cannot bind UDP {host}:{port}: {error.strerror or error}") from error
    for sock in group:
        sock.setblocking(False)
    return group


def current_generation() -> int:
    return int(os.environ.get(GENERATION_ENV, "0")) % 2


def next_generation_on_reload() -> None:
    """Called once in the master: the master a reload re-executes reads the other generation."""
    os.environ[GENERATION_ENV] = str(1 - current_generation())


class ConnectionIds:
    """Makes the connection IDs of one worker: random, with a first byte that the steering
    program maps to the worker's socket (`index` in a group of `size`), and their stateless
    reset tokens, derived from the ID with the master's `reset_key` (RFC 9000 10.3.2), so the
    worker that later reads a packet for an ID it does not hold (its predecessor's, after a
    crash) can end that connection at once with a stateless reset."""

    def __init__(self, index: int, size: int, reset_key: bytes) -> None:
        self.index = index
        self.size = size
        self.spread = 256 // size
        self.reset_key = reset_key

    def make(self, length: int) -> bytes:
        cid = bytearray(os.urandom(length))
        cid[0] = self.index + self.size * (cid[0] % self.spread)
        return bytes(cid)

    def reset_token(self, cid: bytes) -> bytes:
        return hmac.new(self.reset_key, cid, hashlib.sha256).digest()[:16]


def steer_connection_ids(quic, ids: ConnectionIds) -> None:
    """Give a new server-side `QuicConnection` IDs (and reset tokens) from `ids`: its first one
    (before any packet is built) and every one it issues later."""
    first = quic._host_cids[0]
    first.cid = ids.make(len(first.cid))
    first.stateless_reset_token = ids.reset_token(first.cid)
    quic.host_cid = quic._local_initial_source_connection_id = first.cid
    replenish = quic._replenish_connection_ids

    def replenish_steered() -> None:
        known = len(quic._host_cids)
        replenish()
        for connection_id in quic._host_cids[known:]:
            connection_id.cid = ids.make(len(connection_id.cid))
            connection_id.stateless_reset_token = ids.reset_token(connection_id.cid)
    quic._replenish_connection_ids = replenish_steered
